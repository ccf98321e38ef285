/**
 * Stereo is mixed down, not cut to one channel. The fixtures carry the speech in the right
 * channel only (test/fixtures/speech.ts rightOnlyStereo): keeping the left channel hears
 * nothing, keeping the right hears it at twice the level of the true (L+R)/2 mix, and the
 * echo engine reports the level it heard. PCM16 stereo on /v1/stream, a stereo WAV on REST.
 */
import t from 'tap';
import OpenAI from 'openai';
import { floatToPcm16 } from '../../server/audio/pcm16.js';
import { ECHO_MODEL_ID } from '../../server/engines/echo/engine.js';
import { rightOnlyStereo, speechFixture } from '../fixtures/speech.js';
import { pcmPackets, TestClient, type TurnRecord } from '../helpers/native-client.js';
import { startTestServer } from '../helpers/server.js';

const fixture = await speechFixture(0);
const server = await startTestServer({ coalesce: false });
t.teardown(() => server.close(0));

const heard = (reply: string) => ({ ms: Number(/heard (\d+) ms/.exec(reply)?.[1] ?? 0), rms: Number(/at rms (\d+\.\d+)/.exec(reply)?.[1] ?? 0) });

async function turnsOf(channels: 1 | 2, samples: Int16Array): Promise<TurnRecord[]> {
  const client = await TestClient.connect(`${server.wsUrl}/v1/stream`);
  await client.hello({ codec: 'pcm16', sampleRate: 16000, channels, vad: { bargeIn: false } });
  await client.stream(pcmPackets(samples, 16000 * channels), 20);
  const turns = await client.waitForTurnsDone(fixture.truth.length);
  client.close();
  return turns;
}

t.test('PCM16 stereo on /v1/stream: every sentence heard, at half the level of the speech channel', async (t) => {
  const stereo = await rightOnlyStereo(fixture, { rate: 16000, raw: true });
  const [mono, mixed] = await Promise.all([turnsOf(1, floatToPcm16(fixture.samples16k)), turnsOf(2, new Int16Array(stereo.buffer, stereo.byteOffset, stereo.length / 2))]);
  t.equal(mixed.length, fixture.truth.length, 'one turn per sentence: the speech channel is heard');
  t.equal(mixed.length, mono.length);
  mixed.forEach((turn, i) => {
    const [m, s] = [heard(mono[i]!.text), heard(turn.text)];
    t.ok(Math.abs(s.ms - m.ms) <= 40, `turn ${i + 1}: the same utterance (${s.ms} vs ${m.ms} ms)`);
    t.ok(Math.abs(s.rms / m.rms - 0.5) < 0.03, `turn ${i + 1}: rms ${s.rms} is half the mono ${m.rms}`);
  });
});

t.test('a stereo WAV on REST: mixed down, at half the level of the speech channel', async (t) => {
  const client = new OpenAI({ apiKey: 'unused', baseURL: `${server.url}/v1` });
  const wav = await rightOnlyStereo(fixture, { rate: 44100 });
  const completion = await client.chat.completions.create({
    model: ECHO_MODEL_ID,
    messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: wav.toString('base64'), format: 'wav' } }] }],
  });
  const { ms, rms } = heard(completion.choices[0]!.message.content ?? '');
  let energy = 0;
  for (const v of fixture.samples16k) energy += v * v;
  const speechRms = Math.sqrt(energy / fixture.samples16k.length);
  t.ok(Math.abs(ms - fixture.durationMs) <= 20, `the whole clip (${ms} of ${fixture.durationMs} ms)`);
  t.ok(Math.abs(rms / speechRms - 0.5) < 0.03, `rms ${rms} is half the speech channel's ${speechRms.toFixed(4)}`);
});
