/**
 * Input transcription on /v1/realtime: the official SDK over TLS turns it on in a realtime
 * session and gets each utterance's transcript in OpenAI's live order beside the responses;
 * a transcription session (`intent: 'transcription'`) gives VAD and transcripts and never a
 * response; a beta client's `input_audio_transcription`; a failed transcription is `.failed`.
 */
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import t, { type Test } from 'tap';
import { speechFixture } from '../fixtures/speech.js';
import { startTestServer } from '../helpers/server.js';
import { selfSignedCert } from '../helpers/tls.js';
import { DeafTranscriber } from '../rest/recording-engine.js';
import { pcmChunks, RealtimeClient, type RealtimeEvent } from './helpers.js';

const WAIT_LIMIT_MS = 20_000;
const TEST_TRANSCRIPT = /^\[echo test transcript: \d+\.\d+ s of audio at rms \d\.\d+\]$/;

const tls = await selfSignedCert();
t.teardown(tls.dispose);
const fixture = await speechFixture(3, { sentences: 2 });
const server = await startTestServer({ tlsCert: tls.cert, tlsKey: tls.key });
t.teardown(() => server.close(0));
const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${server.url}/v1` });

/** An SDK connection that records every event; `until` waits for a condition (a failure guard, not a timing assertion). */
async function connect(props: { model: string } | { intent: 'transcription' }) {
  const rt = new OpenAIRealtimeWS({ ...props, options: { rejectUnauthorized: false } } as never, client);
  const events: RealtimeEvent[] = [];
  const errors: unknown[] = [];
  rt.on('event', (e) => events.push(e as unknown as RealtimeEvent));
  rt.on('error', (err) => errors.push(err));
  await new Promise<void>((resolve, reject) => {
    rt.socket.once('open', () => resolve());
    rt.socket.once('error', reject);
  });
  const until = async (done: () => boolean, what: string) => {
    const deadline = Date.now() + WAIT_LIMIT_MS;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${events.map((e) => e.type).join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const count = (type: string) => events.filter((e) => e.type === type).length;
  const speak = () => {
    for (const chunk of pcmChunks(fixture.pcm24k, 24000, 40)) rt.send({ type: 'input_audio_buffer.append', audio: chunk.toString('base64') });
  };
  return { rt, events, errors, until, count, speak };
}

/** Per item: committed → item.added → item.done (transcript null) → deltas → completed, as OpenAI orders them live. */
function checkTranscripts(t: Test, events: RealtimeEvent[]): void {
  const committed = events.filter((e) => e.type === 'input_audio_buffer.committed');
  t.equal(committed.length, fixture.truth.length, 'one item per sentence');
  for (const [i, c] of committed.entries()) {
    const id = c.item_id as string;
    const at = (match: (e: RealtimeEvent) => boolean) => events.findIndex(match);
    const added = at((e) => e.type === 'conversation.item.added' && e.item.id === id);
    const done = at((e) => e.type === 'conversation.item.done' && e.item.id === id);
    const firstDelta = at((e) => e.type === 'conversation.item.input_audio_transcription.delta' && e.item_id === id);
    const completed = events.find((e) => e.type === 'conversation.item.input_audio_transcription.completed' && e.item_id === id);
    const order = [events.indexOf(c), added, done, firstDelta, completed ? events.indexOf(completed) : -1];
    t.ok(order.every((v, k) => v >= 0 && (k === 0 || v > order[k - 1]!)), `#${i} committed < added < done < delta < completed: ${order}`);
    t.same(events[done]?.item.content, [{ type: 'input_audio', transcript: null }], `#${i} item.done has no transcript yet`);
    const deltas = events.filter((e) => e.type === 'conversation.item.input_audio_transcription.delta' && e.item_id === id).map((e) => e.delta as string);
    t.match(completed, { content_index: 0, transcript: TEST_TRANSCRIPT, usage: { type: 'tokens', input_tokens: Number, output_tokens: Number } }, `#${i} completed with the test transcript`);
    t.equal(deltas.join('').trim(), completed?.transcript, `#${i} deltas add up to the transcript`);
  }
}

t.test('SDK realtime session: audio.input.transcription turns the transcription events on, beside the responses', async (t) => {
  const { rt, events, errors, until, count, speak } = await connect({ model: 'earshot-echo-test-engine' });
  rt.send({ type: 'session.update', session: { type: 'realtime', output_modalities: ['text'], audio: { input: { transcription: { model: 'gpt-4o-transcribe', language: 'en' } } } } });
  await until(() => count('session.updated') === 1, 'session.updated');
  t.same(events.find((e) => e.type === 'session.updated')!.session.audio.input.transcription, { model: 'earshot-echo-test-engine', language: 'en', prompt: '' }, 'the served model transcribes');
  speak();
  const n = fixture.truth.length;
  await until(() => count('conversation.item.input_audio_transcription.completed') >= n && count('response.done') >= n, 'transcripts and responses');
  checkTranscripts(t, events);
  t.equal(count('response.done'), n, 'and the conversation answered every sentence');
  const id = events.find((e) => e.type === 'input_audio_buffer.committed')!.item_id as string;
  rt.send({ type: 'conversation.item.retrieve', item_id: id });
  await until(() => count('conversation.item.retrieved') === 1, 'retrieved');
  t.match(events.find((e) => e.type === 'conversation.item.retrieved')!.item.content, [{ type: 'input_audio', transcript: TEST_TRANSCRIPT }], 'the item keeps its transcript');
  t.same(errors, []);
  rt.close();
});

t.test('SDK: a user audio item made by conversation.item.create is transcribed too', async (t) => {
  const { rt, events, errors, until, count } = await connect({ model: 'earshot-echo-test-engine' });
  rt.send({ type: 'session.update', session: { type: 'realtime', output_modalities: ['text'], audio: { input: { transcription: { model: 'whisper-1' }, turn_detection: null } } } });
  await until(() => count('session.updated') === 1, 'session.updated');
  rt.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'typed, not spoken' }] } });
  rt.send({ type: 'conversation.item.create', item: { id: 'item_spoken', type: 'message', role: 'user', content: [{ type: 'input_audio', audio: Buffer.from(fixture.pcm24k.buffer, fixture.pcm24k.byteOffset, fixture.pcm24k.byteLength).toString('base64') }] } });
  await until(() => count('conversation.item.input_audio_transcription.completed') === 1, 'the transcript');
  const done = events.findIndex((e) => e.type === 'conversation.item.done' && e.item.id === 'item_spoken');
  const completed = events.findIndex((e) => e.type === 'conversation.item.input_audio_transcription.completed');
  t.ok(done >= 0 && done < completed, 'item.done, then its transcript');
  t.match(events[completed], { item_id: 'item_spoken', content_index: 0, transcript: TEST_TRANSCRIPT });
  t.notOk(events.some((e) => e.type.startsWith('conversation.item.input_audio_transcription') && e.item_id !== 'item_spoken'), 'the text item has no transcription');
  rt.send({ type: 'conversation.item.retrieve', item_id: 'item_spoken' });
  await until(() => count('conversation.item.retrieved') === 1, 'retrieved');
  t.match(events.find((e) => e.type === 'conversation.item.retrieved')!.item.content, [{ type: 'input_audio', transcript: TEST_TRANSCRIPT }], 'the item keeps its transcript');
  t.same(errors, []);
  rt.close();
});

t.test('SDK transcription session (intent=transcription): VAD and transcripts, never a response', async (t) => {
  const { rt, events, errors, until, count, speak } = await connect({ intent: 'transcription' });
  await until(() => count('session.created') === 1, 'session.created');
  t.match(events[0]!.session, { type: 'transcription', object: 'realtime.transcription_session', audio: { input: { transcription: { model: 'earshot-echo-test-engine' }, turn_detection: { type: 'server_vad' } } } });
  speak();
  const n = fixture.truth.length;
  await until(() => count('conversation.item.input_audio_transcription.completed') >= n, 'transcripts');
  t.equal(count('input_audio_buffer.speech_started'), n, 'the VAD found each sentence');
  checkTranscripts(t, events);
  rt.send({ type: 'response.create' });
  await until(() => errors.length === 1, 'the refusal');
  t.match(errors[0], { error: { code: 'unsupported' } }, 'response.create is refused');
  t.notOk(events.some((e) => e.type.startsWith('response.')), 'no response.* event at all');

  const plain = await connect({ model: 'earshot-echo-test-engine' });
  plain.rt.send({ type: 'session.update', session: { type: 'transcription', audio: { input: { transcription: { model: 'x' } } } } });
  await plain.until(() => plain.count('session.updated') === 1, 'session.updated');
  t.match(plain.events.at(-1)!.session, { type: 'transcription', object: 'realtime.transcription_session' }, "session.type 'transcription' turns a session into one");
  plain.speak();
  await plain.until(() => plain.count('conversation.item.input_audio_transcription.completed') >= n, 'transcripts');
  t.notOk(plain.events.some((e) => e.type.startsWith('response.')), 'and it never responds');
  rt.close();
  plain.rt.close();
});

t.test('beta input_audio_transcription; a failed transcription is .failed and the conversation goes on', async (t) => {
  const deaf = await startTestServer({}, { engine: new DeafTranscriber() });
  t.teardown(() => deaf.close(0));
  const rt = await RealtimeClient.connect(`${deaf.wsUrl}/v1/realtime?model=x`, { headers: { 'OpenAI-Beta': 'realtime=v1' } });
  rt.send({ type: 'session.update', session: { modalities: ['text'], input_audio_transcription: { model: 'whisper-1' }, turn_detection: { type: 'server_vad', interrupt_response: false } } });
  const updated = await rt.waitForType('session.updated');
  t.same(updated.session.input_audio_transcription, { model: 'earshot-echo-test-engine', language: null, prompt: '' });
  for (const chunk of pcmChunks(fixture.pcm24k, 24000, 40)) rt.send({ type: 'input_audio_buffer.append', audio: chunk.toString('base64') });
  const failed = await rt.waitForCount('conversation.item.input_audio_transcription.failed', fixture.truth.length);
  t.match(failed[0], { content_index: 0, item_id: rt.ofType('conversation.item.created')[0]!.item.id, error: { code: 'engine_error', message: 'the speech model is down' } });
  const done = await rt.waitForCount('response.done', fixture.truth.length);
  rt.send({ type: 'conversation.item.create', item: { id: 'item_made', type: 'message', role: 'user', content: [{ type: 'input_audio', audio: Buffer.from(fixture.pcm24k.buffer, fixture.pcm24k.byteOffset, fixture.pcm24k.byteLength).toString('base64') }] } });
  const made = await rt.waitFor((e) => e.type === 'conversation.item.input_audio_transcription.failed' && e.item_id === 'item_made');
  t.match(made, { error: { code: 'engine_error' } }, 'an item made by conversation.item.create fails the same way');
  t.ok(done.every((d) => d.response.status === 'completed'), 'every response still completed');
  t.equal(rt.ofType('error').length, 0, 'no error events: only the transcriptions failed');
  rt.close();
});
