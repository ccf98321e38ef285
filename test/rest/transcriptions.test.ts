/** POST /v1/audio/transcriptions through the official SDK's multipart upload, on both transports. */
import OpenAI, { APIError, BadRequestError, NotFoundError, toFile } from 'openai';
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { parseMultipart } from '../../server/http/multipart.js';
import { ECHO_MODEL_ID } from '../../server/engines/echo/engine.js';
import { joinClips } from '../../server/audio/clip.js';
import { encodeWav16 } from '../../server/audio/wav.js';
import { NOISE_CLIPS, noiseClip } from '../fixtures/noise.js';
import { mp3Of, speechFixture, wavVariant } from '../fixtures/speech.js';
import { startTestServer, TRANSPORTS } from '../helpers/server.js';
import { RecordingEngine } from './recording-engine.js';

async function failure(promise: Promise<unknown>): Promise<APIError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof APIError)) throw new Error(`expected an APIError, got ${String(err)}`);
  return err;
}

t.test('multipart parser', async (t) => {
  const body = Buffer.concat([
    Buffer.from('preamble\r\n--b-1\r\nContent-Disposition: form-data; name="model"\r\n\r\nm\r\n--b-1\r\n'),
    Buffer.from('Content-Disposition: form-data; name="file"; filename="a.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'),
    Buffer.from([0, 13, 10, 45, 45, 98, 255]), // CRLF and "--b" inside the data are not a boundary
    Buffer.from('\r\n--b-1--\r\n'),
  ]);
  const parts = parseMultipart(body, 'multipart/form-data; boundary="b-1"');
  t.same(parts.map((p) => [p.name, p.filename, p.contentType, [...p.data]]), [
    ['model', undefined, undefined, [109]],
    ['file', 'a.bin', 'application/octet-stream', [0, 13, 10, 45, 45, 98, 255]],
  ]);
  t.throws(() => parseMultipart(body.subarray(0, body.length - 12), 'multipart/form-data; boundary=b-1'), { code: 'bad_message' }, 'a truncated body is refused');
  t.throws(() => parseMultipart(body, 'application/json'), { code: 'bad_message' }, 'another content type is refused');
});

const TOLERANCE_MS = 150;
const TEST_TRANSCRIPT = /^\[echo test transcript: (\d+\.\d+) s of audio at rms \d\.\d+\]$/;

for (const transport of TRANSPORTS) {
  t.test(`transcriptions over ${transport}`, async (t) => {
    const engine = new RecordingEngine();
    const server = await startTestServer({ transport }, { engine });
    t.teardown(() => server.close(0));
    const client = new OpenAI({ apiKey: 'x', baseURL: `${server.url}/v1`, maxRetries: 0 });
    const speech = await speechFixture(5, { sentences: 1 });

    const stereo = await wavVariant(speech, { rate: 44100, channels: 2 });
    const json = await client.audio.transcriptions.create({ file: await toFile(stereo, 'speech.wav'), model: ECHO_MODEL_ID, language: 'en', prompt: 'Earshot' });
    const heard = Number(TEST_TRANSCRIPT.exec(json.text)?.[1]) * 1000;
    t.ok(Math.abs(heard - speech.durationMs) <= 20, `the uploaded WAV reached the engine whole (${heard} vs ${speech.durationMs} ms)`);
    t.match(engine.turns[0], { kind: 'transcribe', hints: { language: 'en', prompt: 'Earshot' }, messages: [{ role: 'user', parts: [{ type: 'audio' }] }] }, 'one transcription turn with language and prompt');
    t.match(json, { usage: { type: 'tokens', input_tokens: Number, output_tokens: Number } }, 'usage in the transcription shape');

    const text = await client.audio.transcriptions.create({ file: await toFile(await mp3Of(speech), 'speech.bin'), model: ECHO_MODEL_ID, response_format: 'text' });
    t.match(text, TEST_TRANSCRIPT, 'MP3 is recognised by its bytes; response_format text gives plain text');

    t.ok((await failure(client.audio.transcriptions.create({ file: await toFile(Buffer.from('hello'), 'a.wav'), model: ECHO_MODEL_ID }))) instanceof BadRequestError, 'a file that is not audio: BadRequestError');
    const unnamed = await client.audio.transcriptions.create({ file: await toFile(stereo, 'speech.wav') } as unknown as Parameters<typeof client.audio.transcriptions.create>[0]);
    t.match(unnamed, { text: TEST_TRANSCRIPT }, 'without model: the served model transcribes');
    const notFound = await failure(client.audio.transcriptions.create({ file: await toFile(stereo, 'a.wav'), model: 'whisper-1' }));
    t.ok(notFound instanceof NotFoundError && notFound.param === 'model', 'unknown model: NotFoundError on model');
    const form = new FormData();
    form.set('model', ECHO_MODEL_ID);
    const missing = await fetch(`${server.url}/v1/audio/transcriptions`, { method: 'POST', body: form });
    t.match({ status: missing.status, body: await missing.json() }, { status: 400, body: { error: { param: 'file' } } }, 'no file part: 400 naming file');
  });
}

t.test('streamed transcription through the SDK: transcript.text.delta events, then done with the text and usage', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.close(0));
  const client = new OpenAI({ apiKey: 'x', baseURL: `${server.url}/v1`, maxRetries: 0 });
  const speech = await speechFixture(5, { sentences: 1 });
  const stream = await client.audio.transcriptions.create({ file: await toFile(await readFile(speech.wav16kPath), 'speech.wav'), model: ECHO_MODEL_ID, stream: true });
  const types: string[] = [];
  let deltas = '';
  let done: { text: string; usage?: { type: string } } | undefined;
  for await (const event of stream) {
    types.push(event.type);
    if (event.type === 'transcript.text.delta') deltas += event.delta;
    if (event.type === 'transcript.text.done') done = event;
  }
  t.ok(types.length > 3 && types.slice(0, -1).every((type) => type === 'transcript.text.delta'), `deltas stream in (${types.length - 1}), done last`);
  t.equal(types.at(-1), 'transcript.text.done');
  t.match(done, { text: TEST_TRANSCRIPT, usage: { type: 'tokens' } });
  t.equal(deltas.trim(), done?.text, 'the deltas add up to the final text');

  const refused = await failure(client.audio.transcriptions.create({ file: await toFile(await readFile(speech.wav16kPath), 'a.wav'), model: ECHO_MODEL_ID, stream: true, response_format: 'srt' } as never));
  t.match({ status: refused.status, param: refused.param }, { status: 400, param: 'stream' }, 'srt cannot be streamed: 400 naming stream');
});

t.test('verbose_json, srt and vtt: segments from the VAD over the file, each transcribed in one batch', async (t) => {
  const engine = new RecordingEngine();
  const server = await startTestServer({}, { engine });
  t.teardown(() => server.close(0));
  const client = new OpenAI({ apiKey: 'x', baseURL: `${server.url}/v1`, maxRetries: 0 });
  const speech = await speechFixture(2);
  const upload = async () => toFile(await readFile(speech.wav16kPath), 'speech.wav');

  const verbose = await client.audio.transcriptions.create({ file: await upload(), model: ECHO_MODEL_ID, response_format: 'verbose_json', timestamp_granularities: ['segment'], language: 'en' });
  t.match(verbose, { task: 'transcribe', language: 'en', usage: { type: 'duration', seconds: Math.ceil(speech.durationMs / 1000) } });
  t.ok(Math.abs(verbose.duration * 1000 - speech.durationMs) < 1, 'duration is the file\'s');
  const segments = verbose.segments ?? [];
  t.equal(segments.length, speech.truth.length, `one segment per sentence (${speech.truth.length})`);
  speech.truth.forEach((truth, i) => {
    const segment = segments[i];
    if (!segment) return;
    t.ok(Math.abs(segment.start * 1000 - truth.startMs) <= TOLERANCE_MS && Math.abs(segment.end * 1000 - truth.endMs) <= TOLERANCE_MS, `segment ${i}: ${segment.start}-${segment.end} s vs truth ${truth.startMs}-${truth.endMs} ms`);
    const seconds = Number(TEST_TRANSCRIPT.exec(segment.text)?.[1]);
    t.ok(seconds >= segment.end - segment.start && seconds < segment.end - segment.start + 0.6, `segment ${i}'s text is the transcript of that segment's clip (${seconds} s)`);
  });
  t.equal(verbose.text, segments.map((s) => s.text).join(' '));
  t.ok(engine.batches.some((batch) => batch.length === segments.length), 'the segments were transcribed in one batch');

  const srt = (await client.audio.transcriptions.create({ file: await upload(), model: ECHO_MODEL_ID, response_format: 'srt' })) as unknown as string;
  const cues = srt.trim().split('\n\n');
  t.equal(cues.length, segments.length);
  t.match(cues[0], /^1\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n\[echo test transcript: /);
  const vttResponse = await fetch(`${server.url}/v1/audio/transcriptions`, { method: 'POST', body: await formOf(speech.wav16kPath, { model: ECHO_MODEL_ID, response_format: 'vtt' }) });
  t.match(vttResponse.headers.get('content-type'), /^text\/vtt/);
  const vtt = await vttResponse.text();
  t.ok(vtt.startsWith('WEBVTT\n\n'), 'a WebVTT file');
  const first = segments[0]!;
  const stamp = (s: number) => new Date(Math.round(s * 1000)).toISOString().slice(11, 23);
  t.ok(vtt.includes(`${stamp(first.start)} --> ${stamp(first.end)}\n${first.text}\n`), 'vtt cues carry the verbose segments\' times and texts');

  const words = await failure(client.audio.transcriptions.create({ file: await upload(), model: ECHO_MODEL_ID, response_format: 'verbose_json', timestamp_granularities: ['word'] }));
  t.match({ status: words.status, param: words.param, message: words.message }, { status: 400, param: 'timestamp_granularities', message: /word timestamps/ });
});

t.test('verbose_json segments follow --vad: music, clicks and a chord make none with hybrid (the default), and do with webrtc', async (t) => {
  const sentence = await speechFixture(0, { sentences: 1 });
  const gap = new Float32Array(16_000);
  const noise = await Promise.all(NOISE_CLIPS.map((name) => noiseClip(name)));
  const audio = joinClips([...noise.flatMap((clip) => [clip.samples16k, gap]), sentence.samples16k]);
  const offsetMs = (audio.length - sentence.samples16k.length) / 16;
  const file = Buffer.from(encodeWav16(audio, 16_000));
  const speechAt = (s: { start: number }) => Math.abs(s.start * 1000 - (offsetMs + sentence.truth[0]!.startMs)) <= TOLERANCE_MS;
  for (const vad of ['hybrid', 'webrtc'] as const) {
    const server = await startTestServer({ vad });
    const client = new OpenAI({ apiKey: 'x', baseURL: `${server.url}/v1`, maxRetries: 0 });
    const verbose = await client.audio.transcriptions.create({ file: await toFile(file, 'noise-then-speech.wav'), model: ECHO_MODEL_ID, response_format: 'verbose_json' });
    const segments = verbose.segments ?? [];
    t.ok(segments.length > 0 && speechAt(segments.at(-1)!), `${vad}: the sentence is a segment (${segments.map((s) => `${s.start}-${s.end}`).join(', ')})`);
    if (vad === 'hybrid') t.equal(segments.length, 1, 'hybrid: it is the only one');
    else t.ok(segments.length > 1, 'webrtc: the noise makes segments too');
    await server.close(0);
  }
});

async function formOf(path: string, fields: Record<string, string>): Promise<FormData> {
  const form = new FormData();
  form.set('file', new Blob([await readFile(path)]), 'speech.wav');
  for (const [name, value] of Object.entries(fields)) form.set(name, value);
  return form;
}
