/**
 * POST /v1/audio/speech through the official openai SDK: the embedded voice says the input
 * (pocketsphinx hears its key words), every offered format decodes with a real decoder (the
 * Ogg file with opus-tools' opusdec), SSE streams one delta per sentence, and bad requests get
 * OpenAI's error JSON naming what is available.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import t from 'tap';
import { parseOggOpus } from '../../clients/node/ogg.js';
import { decodeMp3 } from '../../server/audio/mp3.js';
import { OpusPacketDecoder } from '../../server/audio/opus.js';
import { decodeWav } from '../../server/audio/wav.js';
import { unheard } from '../helpers/hear.js';
import { startTestServer } from '../helpers/server.js';

const run = promisify(execFile);
const server = await startTestServer({ ttsThreads: 1 });
t.teardown(() => server.close(0));
const client = new OpenAI({ apiKey: 'x', baseURL: `${server.url}/v1`, maxRetries: 0 });
const TEXT = 'The quick brown fox jumps over the lazy dog.';

async function speak(format: 'wav' | 'mp3' | 'opus' | 'pcm', input = TEXT): Promise<Buffer> {
  const response = await client.audio.speech.create({ model: 'tts-1', voice: 'alloy', input, response_format: format });
  return Buffer.from(await response.arrayBuffer());
}

t.test('wav: the voice says the input', async (t) => {
  const { channels, sampleRate } = decodeWav(await speak('wav'));
  t.equal(sampleRate, 24_000);
  const { missing, heard } = await unheard(channels[0]!, sampleRate, ['quick', 'brown', 'fox', 'dog']);
  t.same(missing, [], `pocketsphinx heard: "${heard}"`);
});

t.test('pcm, mp3 and Ogg Opus hold the same speech as wav', async (t) => {
  const wav = decodeWav(await speak('wav')).channels[0]!;
  const seconds = wav.length / 24_000;
  const pcm = await speak('pcm');
  t.equal(pcm.length, wav.length * 2, 'pcm: raw 24 kHz 16-bit samples, as many as the wav holds');

  // MP3 and Opus are encoded on the voice stage's encoding thread, not on the event loop.
  const thread = server.ctx.voice!.encoding;
  const request = thread.request.bind(thread);
  let jobs = 0;
  thread.request = (job, done) => (jobs++, request(job, done));
  t.teardown(() => void (thread.request = request));
  const mp3 = await decodeMp3(await speak('mp3'));
  t.ok(jobs >= 2, `MP3 encoded on the encoding thread (${jobs} jobs: the sentence's audio, then the flush)`);
  t.equal(mp3.sampleRate, 24_000, 'mp3 at 24 kHz');
  t.ok(Math.abs(mp3.channels[0]!.length / 24_000 - seconds) < 0.1, `mp3 lasts ${(mp3.channels[0]!.length / 24_000).toFixed(2)} s, wav ${seconds.toFixed(2)} s`);

  jobs = 0;
  const opus = await speak('opus');
  t.ok(jobs >= 2, `Opus encoded on the encoding thread too (${jobs} jobs)`);
  const ogg = parseOggOpus(opus);
  t.equal(ogg.channels, 1);
  const decoder = await OpusPacketDecoder.create(24_000, 1);
  let decoded = 0;
  for (const packet of ogg.packets) decoded += decoder.decode(packet).length;
  decoder.close();
  t.equal(decoded, ogg.packets.length * 320, 'every packet is 20 ms');
  t.ok(Math.abs(decoded / 16_000 - seconds) < 0.05, `opus lasts ${(decoded / 16_000).toFixed(2)} s`);
  const dir = await mkdtemp(join(tmpdir(), 'earshot-opus-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'speech.opus'), opus);
  await run('opusdec', ['--quiet', '--rate', '24000', join(dir, 'speech.opus'), join(dir, 'out.wav')]);
  const played = decodeWav(await readFile(join(dir, 'out.wav'))).channels[0]!;
  t.ok(Math.abs(played.length - wav.length) <= 24, `opusdec plays ${played.length} samples (granule positions trim the padding; wav has ${wav.length})`);
});

t.test('sse: a delta per sentence as each is spoken, then done', async (t) => {
  const response = await fetch(`${server.url}/v1/audio/speech`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tts-1', voice: 'nova', input: 'One. Two. Three.', response_format: 'pcm', stream_format: 'sse' }),
  });
  t.match(response.headers.get('content-type'), /text\/event-stream/);
  const events = (await response.text())
    .split('\n\n')
    .filter(Boolean)
    .map((block) => JSON.parse(block.replace(/^data: /, '')) as { type: string; audio?: string });
  t.same(events.map((e) => e.type), ['speech.audio.delta', 'speech.audio.delta', 'speech.audio.delta', 'speech.audio.done']);
  t.ok(events.slice(0, 3).every((e) => Buffer.from(e.audio!, 'base64').length > 24_000 / 4), 'each delta holds a spoken word');
});

t.test('bad requests: OpenAI errors that name what is available', async (t) => {
  const create = (body: Record<string, unknown>) => client.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'hi', ...body } as never);
  await t.rejects(create({ voice: 'darth' }), { status: 400, param: 'voice', message: /voice 'darth' is not available; voices: awb, slt, rms, kal16, alloy/ });
  await t.rejects(create({ response_format: 'flac' }), { status: 400, param: 'response_format', message: /mp3, opus, wav, pcm/ });
  await t.rejects(create({ speed: 9 }), { status: 400, param: 'speed', message: /less than or equal to 4|<=4/ });
  await t.rejects(create({ input: 'x'.repeat(4097) }), { status: 400, param: 'input', message: /4097 characters; the limit is 4096/ });
  await t.rejects(create({ input: '...' }), { status: 400, param: 'input', message: /nothing to say/ });
  const silent = await startTestServer({ tts: 'none' });
  t.teardown(() => silent.close(0));
  const mute = new OpenAI({ apiKey: 'x', baseURL: `${silent.url}/v1`, maxRetries: 0 });
  await t.rejects(mute.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'hi' }), { status: 400, code: 'unsupported', message: /--tts none/ });
});
