/**
 * A live reply (native, Realtime) is synthesised at most --tts-lead-ms ahead of its playback:
 * each piece after the first starts only once the audio made before it, less the lead, has had
 * time to play since the first audio. Timers never fire early, so the bound holds on any machine;
 * a slow one only starts pieces later. The reply is still spoken in full, and a barge-in while a
 * piece waits leaves the rest unsynthesised.
 */
import t, { type Test } from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ServerMessage } from '../../protocol/native.js';
import { createLogger } from '../../server/observability/log.js';
import { FliteTts } from '../../server/voice/flite/engine.js';
import { VOICE_SAMPLE_RATE, type Pcm24k, type SpeakOptions, type Tts, type VoiceInfo } from '../../server/voice/types.js';
import { TestClient } from '../helpers/native-client.js';
import { startTestServer } from '../helpers/server.js';
import { RealtimeClient } from '../realtime/helpers.js';

const LEAD_MS = 400;
/** Echoed back, so the reply has three pieces of a second or more of speech each. */
const TEXT = 'One two three four five six. Seven eight nine ten eleven twelve.';

/** Flite, recording when each piece's synthesis was asked for and how much audio had been made before it. */
class RecordingTts implements Tts {
  readonly name = 'flite';
  calls: { at: number; madeMs: number; text: string }[] = [];
  firstAudioAt: number | undefined;
  madeSamples = 0;
  private readonly inner = new FliteTts({ threads: 1, maxQueue: 64 }, createLogger('silent'));

  voices(): VoiceInfo[] {
    return this.inner.voices();
  }

  async *speak(text: string, voice: string, signal: AbortSignal, options?: SpeakOptions): AsyncIterable<Pcm24k> {
    this.calls.push({ at: performance.now(), madeMs: (this.madeSamples / VOICE_SAMPLE_RATE) * 1000, text });
    for await (const pcm of this.inner.speak(text, voice, signal, options)) {
      this.firstAudioAt ??= performance.now();
      this.madeSamples += pcm.length;
      yield pcm;
    }
  }

  reset(): void {
    [this.calls, this.firstAudioAt, this.madeSamples] = [[], undefined, 0];
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

const tts = new RecordingTts();
const server = await startTestServer({ ttsLeadMs: LEAD_MS }, { tts });
t.teardown(() => server.close(0));

/** Each piece after the first started no sooner than the audio before it, less the lead, could play since the first audio. */
function checkHolds(t: Test): void {
  const pieces = tts.calls.slice(1).map((call) => ({ text: call.text, startedMs: call.at - tts.firstAudioAt!, earliestMs: call.madeMs - LEAD_MS }));
  t.equal(pieces.length, 2, `the reply's 3 pieces: ${tts.calls.map((c) => JSON.stringify(c.text)).join(', ')}`);
  // Less 10 ms: a Node timer counts from the event loop's cached clock, which may run a few ms behind performance.now().
  for (const piece of pieces)
    t.ok(piece.startedMs >= piece.earliestMs - 10, `"${piece.text.slice(0, 24)}…" started ${piece.startedMs.toFixed(0)} ms after the first audio, not before ${piece.earliestMs.toFixed(0)}`);
  t.ok(pieces.some((piece) => piece.earliestMs > 1000), 'some piece had to wait for playback');
}

t.test('native: every piece waits until the audio before it is within the lead of playback, and the whole reply is spoken', async (t) => {
  tts.reset();
  const client = await TestClient.connect(`${server.wsUrl}/v1/stream`);
  t.teardown(() => client.close());
  await client.hello({ codec: 'pcm16', sampleRate: 16000, voice: { codec: 'pcm16', sampleRate: VOICE_SAMPLE_RATE } });
  client.send({ type: 'text', text: TEXT });
  const done = (await client.waitFor((m) => m.type === 'done', 60_000)) as Extract<ServerMessage, { type: 'done' }>;
  t.equal(done.finish, 'stop');
  checkHolds(t);
  const samples = client.messages.reduce((n, m) => n + (m.type === 'audio' ? m.data.length / 2 : 0), 0);
  t.equal(samples, tts.madeSamples, 'every sample made reached the client');
});

t.test('Realtime: the same bound; a cancel while a piece waits for playback leaves it and the rest unsynthesised', async (t) => {
  const client = await RealtimeClient.connect(`${server.wsUrl}/v1/realtime?model=x`);
  t.teardown(() => client.close());
  const ask = () => {
    client.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: TEXT }] } });
    client.send({ type: 'response.create' });
  };
  tts.reset();
  ask();
  t.match(await client.waitForType('response.done'), { response: { status: 'completed' } });
  checkHolds(t);

  tts.reset();
  const from = client.events.length;
  ask();
  // The first piece is longer than the lead, so the second waits for its playback: cancel then.
  await client.waitForType('response.output_audio.delta', from);
  client.send({ type: 'response.cancel' });
  t.match(await client.waitForType('response.done', from), { response: { status: 'cancelled' } });
  const made = tts.calls.length;
  t.ok(made < 3, `${made} of the reply's 3 pieces were synthesised`);
  await sleep(LEAD_MS * 3);
  t.equal(tts.calls.length, made, 'and none after the cancel');
});
