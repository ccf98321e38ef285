/**
 * Chat completions with spoken output through the official openai SDK: `message.audio` carries
 * a WAV that says the reply (pocketsphinx hears it), streaming carries the same speech as
 * `delta.audio` pcm16 chunks beside the transcript, and bad audio requests get OpenAI errors.
 */
import OpenAI from 'openai';
import t from 'tap';
import { parseOggOpus } from '../../clients/node/ogg.js';
import { OpusPacketDecoder } from '../../server/audio/opus.js';
import { decodeWav } from '../../server/audio/wav.js';
import { ECHO_MODEL_ID } from '../../server/engines/echo/engine.js';
import { unheard } from '../helpers/hear.js';
import { startTestServer } from '../helpers/server.js';

const server = await startTestServer({ ttsThreads: 1 });
t.teardown(() => server.close(0));
const client = new OpenAI({ apiKey: 'x', baseURL: `${server.url}/v1`, maxRetries: 0 });
const messages = [{ role: 'user' as const, content: 'the quick brown fox' }];

let wholeSamples: Float32Array | undefined;
let wholeTranscript = '';

t.test('message.audio: a WAV of the reply, its transcript, no content', async (t) => {
  const completion = await client.chat.completions.create({ model: ECHO_MODEL_ID, messages, modalities: ['text', 'audio'], audio: { voice: 'alloy', format: 'wav' } });
  const message = completion.choices[0]!.message;
  t.equal(message.content, null);
  t.match(message.audio, { id: /^audio_/, transcript: /read "the quick brown fox"/, expires_at: Number });
  t.ok(message.audio!.expires_at > Date.now() / 1000, 'expires in the future');
  wholeTranscript = message.audio!.transcript;
  const { channels, sampleRate } = decodeWav(Buffer.from(message.audio!.data, 'base64'));
  wholeSamples = channels[0]!;
  const { missing, heard } = await unheard(wholeSamples, sampleRate, ['quick', 'brown', 'fox']);
  t.same(missing, [], `pocketsphinx heard: "${heard}"`);
});

t.test('message.audio in Ogg Opus: as much speech as the WAV', async (t) => {
  const completion = await client.chat.completions.create({ model: ECHO_MODEL_ID, messages, modalities: ['text', 'audio'], audio: { voice: 'alloy', format: 'opus' } });
  const ogg = parseOggOpus(Buffer.from(completion.choices[0]!.message.audio!.data, 'base64'));
  const decoder = await OpusPacketDecoder.create(24_000, 1);
  t.teardown(() => decoder.close());
  let samples16k = 0;
  for (const packet of ogg.packets) samples16k += decoder.decode(packet).length;
  const wavSeconds = wholeSamples!.length / 24_000;
  t.ok(Math.abs(samples16k / 16_000 - wavSeconds) < 0.05, `${ogg.packets.length} packets, ${(samples16k / 16_000).toFixed(2)} s (the WAV: ${wavSeconds.toFixed(2)} s)`);
});

t.test('streamed: transcript deltas, then pcm16 chunks of the same speech', async (t) => {
  const stream = await client.chat.completions.create({ model: ECHO_MODEL_ID, messages, modalities: ['text', 'audio'], audio: { voice: 'alloy', format: 'pcm16' }, stream: true });
  let transcript = '';
  const audio: Buffer[] = [];
  let id: string | undefined;
  let finish: string | null = null;
  for await (const chunk of stream) {
    const delta = chunk.choices[0]?.delta as { audio?: { id?: string; transcript?: string; data?: string } } | undefined;
    id ??= delta?.audio?.id;
    transcript += delta?.audio?.transcript ?? '';
    if (delta?.audio?.data) audio.push(Buffer.from(delta.audio.data, 'base64'));
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  t.match(id, /^audio_/);
  t.equal(finish, 'stop');
  t.equal(transcript, wholeTranscript, 'the transcript is the reply text');
  t.ok(audio.length > 1, `${audio.length} audio chunks, one per spoken piece`);
  const pcm = Buffer.concat(audio);
  t.equal(pcm.length / 2, wholeSamples!.length, 'as much speech as the whole answer (Flite is deterministic)');
});

t.test('bad audio requests', async (t) => {
  const ask = (extra: Record<string, unknown>) => client.chat.completions.create({ model: ECHO_MODEL_ID, messages, ...extra } as never);
  await t.rejects(ask({ modalities: ['text', 'audio'] }), { status: 400, param: 'audio', message: /needs audio: \{voice, format\}/ });
  await t.rejects(ask({ modalities: ['text', 'audio'], audio: { voice: 'darth', format: 'wav' } }), { status: 400, param: 'audio.voice', message: /voices: awb, slt/ });
  await t.rejects(ask({ modalities: ['text', 'audio'], audio: { voice: 'alloy', format: 'flac' } }), { status: 400, param: 'audio.format', message: /wav, mp3, opus, pcm16/ });
  await t.rejects(ask({ modalities: ['text', 'audio'], audio: { voice: 'alloy', format: 'wav' }, stream: true }), { status: 400, param: 'audio.format', message: /pcm16 only/ });
});
