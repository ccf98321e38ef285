/** POST /v1/audio/transcriptions through the official SDK's multipart upload, on both transports. */
import OpenAI, { APIError, BadRequestError, NotFoundError, toFile } from 'openai';
import t from 'tap';
import { parseMultipart } from '../../server/http/multipart.js';
import { ECHO_MODEL_ID } from '../../server/engines/echo/engine.js';
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

for (const transport of TRANSPORTS) {
  t.test(`transcriptions over ${transport}`, async (t) => {
    const engine = new RecordingEngine();
    const server = await startTestServer({ transport }, { engine });
    t.teardown(() => server.close(0));
    const client = new OpenAI({ apiKey: 'x', baseURL: `${server.url}/v1`, maxRetries: 0 });
    const speech = await speechFixture(5, { sentences: 1 });

    const stereo = await wavVariant(speech, { rate: 44100, channels: 2 });
    const json = await client.audio.transcriptions.create({ file: await toFile(stereo, 'speech.wav'), model: ECHO_MODEL_ID, language: 'en', prompt: 'Earshot' });
    const heard = Number(/heard (\d+) ms/.exec(json.text)?.[1]);
    t.ok(Math.abs(heard - speech.durationMs) <= 20, `the uploaded WAV reached the engine whole (${heard} vs ${speech.durationMs} ms)`);
    const system = engine.turns[0]!.messages[0]!;
    t.match(system, { role: 'system', parts: [{ type: 'text', text: /Transcribe.*language 'en'.*Earshot/ }] }, 'the engine got the transcription instruction with language and prompt');
    t.match(json, { usage: { type: 'tokens', input_tokens: Number, output_tokens: Number } }, 'usage in the transcription shape');

    const text = await client.audio.transcriptions.create({ file: await toFile(await mp3Of(speech), 'speech.bin'), model: ECHO_MODEL_ID, response_format: 'text' });
    t.match(text, /^Echo test engine, turn 1: heard \d+ ms/, 'MP3 is recognised by its bytes; response_format text gives plain text');

    t.ok((await failure(client.audio.transcriptions.create({ file: await toFile(Buffer.from('hello'), 'a.wav'), model: ECHO_MODEL_ID }))) instanceof BadRequestError, 'a file that is not audio: BadRequestError');
    const notFound = await failure(client.audio.transcriptions.create({ file: await toFile(stereo, 'a.wav'), model: 'whisper-1' }));
    t.ok(notFound instanceof NotFoundError && notFound.param === 'model', 'unknown model: NotFoundError on model');
    const form = new FormData();
    form.set('model', ECHO_MODEL_ID);
    const missing = await fetch(`${server.url}/v1/audio/transcriptions`, { method: 'POST', body: form });
    t.match({ status: missing.status, body: await missing.json() }, { status: 400, body: { error: { param: 'file' } } }, 'no file part: 400 naming file');
  });
}
