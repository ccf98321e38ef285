/**
 * The TTS engines besides the embedded one: macOS `say` (run against the stand-in in
 * test/fixtures/say, which speaks with espeak-ng) and an OpenAI-compatible /v1/audio/speech
 * upstream (a real local HTTP server streaming PCM), including the upstream failing or down.
 * What the voices say is judged where pocketsphinx can hear it (Flite: test/voice/stage.test.ts).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import t from 'tap';
import { defaultConfig } from '../../server/config.js';
import { ECHO_MODEL_ID } from '../../server/engines/echo/engine.js';
import { createVoiceStage } from '../../server/voice/stage.js';
import { startTestServer } from '../helpers/server.js';
import { collect } from './helpers.js';

const SAY = fileURLToPath(new URL('../fixtures/say', import.meta.url));
const live = () => new AbortController().signal;
const rms = (pcm: Int16Array) => Math.sqrt(pcm.reduce((e, s) => e + s * s, 0) / pcm.length);

t.test('say: voices from say -v ?, speech from say -o, speed as words per minute', async (t) => {
  const stage = (await createVoiceStage(defaultConfig({ tts: 'say', ttsSayCommand: SAY })))!;
  t.teardown(() => stage.close());
  t.same(stage.voices().map((v) => v.id), ['Samantha', 'Alex', 'Eddy (English (US))', 'Daniel', 'Amélie'], 'English voices first, Samantha leading');
  t.equal(stage.defaultVoice, 'Samantha');
  t.equal(stage.resolveVoice('nova'), 'Samantha', 'a female OpenAI voice maps to a female macOS voice');
  t.equal(stage.resolveVoice('echo'), 'Alex');
  // pocketsphinx cannot make out espeak-ng (the stand-in's voice), so this checks the plumbing: a voice with brackets, the text on stdin, the WAV read back.
  const pcm = await collect(stage.speak('Seven green apples.', 'Eddy (English (US))', live()));
  const seconds = pcm.length / 24_000;
  t.ok(seconds > 0.8 && seconds < 3, `${seconds.toFixed(2)} s for three words`);
  t.ok(rms(pcm) > 1000, `not silence (rms ${rms(pcm).toFixed(0)})`);
  const fast = await collect(stage.speak('Seven green apples.', 'Eddy (English (US))', live(), { speed: 2 }));
  t.ok(fast.length < pcm.length * 0.75, `speed 2 speaks faster (${fast.length} vs ${pcm.length} samples)`);
  await t.rejects(collect(stage.speak('Hello.', 'Zarvox', live())), { code: 'voice_error', message: /voice stage \(say\): .*Voice `Zarvox' not found/ });
  await t.rejects(createVoiceStage(defaultConfig({ tts: 'say', ttsSayCommand: '/nonexistent/say' })), /cannot list voices .*--tts say needs macOS/);
});

interface Upstream {
  url: string;
  requests: { body: Record<string, unknown>; authorization: string | undefined }[];
  /** Lets the upstream send the second half of its answer. */
  release(): void;
  close(): Promise<void>;
}

/** An OpenAI-compatible speech server that streams `pcm` in two halves, the second only after release(). */
async function upstream(pcm: Int16Array, status = 200): Promise<Upstream> {
  const requests: Upstream['requests'] = [];
  let release = () => {};
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString('utf8')));
    req.on('end', () => {
      requests.push({ body: JSON.parse(body) as Record<string, unknown>, authorization: req.headers.authorization });
      if (status !== 200) {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'model overloaded' } }));
        return;
      }
      const bytes = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
      const half = (bytes.length >> 1) | 1; // an odd split: a sample straddles the two chunks
      res.writeHead(200, { 'content-type': 'audio/pcm' });
      res.write(bytes.subarray(0, half));
      release = () => res.end(bytes.subarray(half));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    requests,
    release: () => release(),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

t.test('openai upstream: PCM handed on as it arrives, voices and key passed through', async (t) => {
  const flite = (await createVoiceStage(defaultConfig({ ttsThreads: 1 })))!;
  const speech = await collect(flite.speak('Hello from upstream.', 'slt', live()));
  await flite.close();
  const up = await upstream(speech);
  t.teardown(() => up.close());
  const stage = (await createVoiceStage(defaultConfig({ tts: 'openai', ttsUrl: up.url, ttsKey: 'sk-up', ttsModel: 'kokoro' })))!;
  t.teardown(() => stage.close());
  t.same(stage.voices().map((v) => v.id).slice(0, 3), ['alloy', 'ash', 'ballad'], 'OpenAI\'s voices by default');
  const chunks: Int16Array[] = [];
  for await (const chunk of stage.tts.speak('Hello from upstream.', 'shimmer', live(), { speed: 1.5 })) {
    chunks.push(chunk);
    // The first half is handed on before the upstream has sent the rest.
    if (chunks.length === 1) up.release();
  }
  t.ok(chunks.length >= 2, `${chunks.length} chunks`);
  const joined = await collect((async function* () { yield* chunks; })());
  t.same(joined, speech, 'every sample arrives intact, the straddling one too');
  t.same(up.requests, [{ body: { model: 'kokoro', input: 'Hello from upstream.', voice: 'shimmer', response_format: 'pcm', speed: 1.5 }, authorization: 'Bearer sk-up' }]);
  const own = (await createVoiceStage(defaultConfig({ tts: 'openai', ttsUrl: up.url, ttsVoices: ['af_bella', 'am_adam'] })))!;
  t.equal(own.resolveVoice('alloy'), 'af_bella', 'OpenAI names map onto the upstream\'s own voices');
  await own.close();
});

t.test('openai upstream failing or down: a voice_error naming the upstream; the reply\'s text still arrives', async (t) => {
  const failing = await upstream(new Int16Array(0), 503);
  const stage = (await createVoiceStage(defaultConfig({ tts: 'openai', ttsUrl: failing.url })))!;
  await t.rejects(collect(stage.speak('Hi there.', 'alloy', live())), { code: 'voice_error', message: /voice stage \(openai\): upstream "127\.0\.0\.1:\d+" answered 503: .*model overloaded/ });
  await failing.close();
  await t.rejects(collect(stage.speak('Hi there.', 'alloy', live())), { code: 'voice_error', message: /upstream "127\.0\.0\.1:\d+" is unreachable \(ECONNREFUSED\)/ });
  await stage.close();

  const server = await startTestServer({ tts: 'openai', ttsUrl: failing.url });
  t.teardown(() => server.close(0));
  const client = new OpenAI({ apiKey: 'x', baseURL: `${server.url}/v1`, maxRetries: 0 });
  const completion = await client.chat.completions.create({ model: ECHO_MODEL_ID, messages: [{ role: 'user', content: 'hello' }], modalities: ['text', 'audio'], audio: { voice: 'alloy', format: 'wav' } });
  t.match(completion.choices[0]!.message, { content: /read "hello"/, audio: null }, 'chat: the text arrives without audio');
  await t.rejects(client.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'hello' }), { status: 502, code: 'voice_error', message: /unreachable/ }, 'speech: 502 naming the voice stage');
  const health = await fetch(`${server.url}/health`);
  t.equal(health.status, 200, 'the server stays up');
  t.match(await health.json(), { tts: 'openai' }, '/health names the TTS engine');
});
