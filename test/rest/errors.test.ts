/**
 * Every REST error case through the official SDK: the status, the SDK's error class, and
 * OpenAI's `{error: {message, type, param, code}}` body with `param` naming the field.
 */
import OpenAI, { APIError, RateLimitError } from 'openai';
import type { ChatCompletionContentPart, ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import t, { type Test } from 'tap';
import { EarshotError } from '../../protocol/errors.js';
import { encodeWav16 } from '../../server/audio/wav.js';
import { ECHO_MODEL_ID, EchoEngine } from '../../server/engines/echo/engine.js';
import type { Engine } from '../../server/engines/types.js';
import { speechFixture } from '../fixtures/speech.js';
import { startTestServer, TRANSPORTS } from '../helpers/server.js';
import { RecordingEngine } from './recording-engine.js';

type ErrorClass = abstract new (...args: never[]) => APIError;

async function rejects(t: Test, promise: Promise<unknown>, kind: ErrorClass, expected: { status: number; param?: string | null; code?: string; message?: RegExp }, what: string): Promise<APIError | undefined> {
  try {
    await promise;
    t.fail(`${what}: expected ${kind.name}, got a completion`);
    return undefined;
  } catch (err) {
    t.ok(err instanceof kind, `${what}: ${kind.name} (got ${(err as Error).constructor.name}: ${(err as Error).message})`);
    const api = err as APIError;
    t.equal(api.status, expected.status, `${what}: status ${expected.status}`);
    if (expected.param !== undefined) t.equal(api.param, expected.param, `${what}: param ${expected.param}`);
    if (expected.code) t.equal(api.code, expected.code, `${what}: code ${expected.code}`);
    if (expected.message) t.match(api.message, expected.message, `${what}: message`);
    return api;
  }
}

function audio(data: string, format: string): ChatCompletionContentPart {
  return { type: 'input_audio', input_audio: { data, format: format as 'wav' } };
}

function user(...content: ChatCompletionContentPart[]): ChatCompletionCreateParamsNonStreaming {
  return { model: ECHO_MODEL_ID, messages: [{ role: 'user', content }] };
}

for (const transport of TRANSPORTS) {
  t.test(`bad requests over ${transport}`, async (t) => {
    const server = await startTestServer({ transport, maxBodyBytes: 256 << 10 });
    t.teardown(() => server.close(0));
    const client = new OpenAI({ apiKey: 'x', baseURL: `${server.url}/v1`, maxRetries: 0 });
    const speech = await speechFixture(4, { sentences: 1 });
    const wav = Buffer.from(encodeWav16(speech.samples16k, 16000));
    const completions = client.chat.completions;

    const raw = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": ' });
    t.equal(raw.status, 400, 'invalid JSON: 400');
    t.match(await raw.json(), { error: { type: 'invalid_request_error', code: 'bad_message', param: null, message: /not valid JSON/ } }, 'invalid JSON: OpenAI error shape');

    await rejects(t, completions.create({ ...user({ type: 'text', text: 'hi' }), n: 2 }), OpenAI.BadRequestError, { status: 400, param: 'n', message: /n=1/ }, 'n=2');
    await rejects(t, completions.create({ model: ECHO_MODEL_ID, messages: [] }), OpenAI.BadRequestError, { status: 400, param: 'messages' }, 'no messages');
    await rejects(t, completions.create({ ...user({ type: 'text', text: 'hi' }), temperature: 3 }), OpenAI.BadRequestError, { status: 400, param: 'temperature' }, 'temperature out of range');
    await rejects(t, completions.create({ model: ECHO_MODEL_ID, messages: [{ role: 'tool', content: 'x', tool_call_id: 'a' }] }), OpenAI.BadRequestError, { status: 400, param: 'messages[0].role' }, 'tool role');
    await rejects(t, completions.create(user(audio('not base64!', 'wav'))), OpenAI.BadRequestError, { status: 400, param: 'messages[0].content[0].input_audio.data', message: /base64/ }, 'bad base64');
    await rejects(t, completions.create(user(audio(Buffer.from('RIFF....WAVEjunkjunkjunk').toString('base64'), 'wav'))), OpenAI.BadRequestError, { status: 400, code: 'bad_audio', param: 'messages[0].content[0].input_audio.data' }, 'undecodable WAV');
    await rejects(t, completions.create(user(audio(Buffer.from('OggS, neither WAV nor MP3').toString('base64'), 'wav'))), OpenAI.BadRequestError, { status: 400, code: 'unsupported', param: 'messages[0].content[0].input_audio.data', message: /WAV or MP3/ }, 'bytes that are neither WAV nor MP3');
    await rejects(t, completions.create(user(audio(wav.toString('base64'), 'flac'))), OpenAI.BadRequestError, { status: 400, param: 'messages[0].content[0].input_audio.format', message: /wav, mp3/ }, 'unsupported format');
    await rejects(t, completions.create(user({ type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } })), OpenAI.BadRequestError, { status: 400, code: 'unsupported', param: 'messages[0].content[0]', message: /does not accept images/ }, 'image for an audio-only model');
    await rejects(t, completions.create({ ...user({ type: 'text', text: 'hi' }), model: 'gpt-4o' }), OpenAI.NotFoundError, { status: 404, param: 'model', code: 'not_found' }, 'unknown model');

    for (const [method, path, allow] of [['GET', '/chat/completions', 'POST, OPTIONS'], ['DELETE', '/models', 'GET, OPTIONS'], ['PUT', '/audio/transcriptions', 'POST, OPTIONS']] as const) {
      const wrong = await rejects(t, client.request({ method: method.toLowerCase() as 'get', path }), OpenAI.APIError, { status: 405, code: 'method_not_allowed', message: new RegExp(`${method} not allowed`) }, `${method} ${path}`);
      t.equal(wrong?.headers?.get('allow'), allow, `${method} ${path}: Allow names the methods`);
      t.equal(wrong?.type, 'invalid_request_error', `${method} ${path}: OpenAI error JSON`);
    }
    t.equal((await fetch(`${server.url}/no-such-page`, { method: 'POST' })).status, 404, 'an unknown path stays 404 whatever the method');

    const long = new Float32Array(31 * 16000);
    for (let at = 0; at < long.length; at += speech.samples16k.length) long.set(speech.samples16k.subarray(0, long.length - at), at);
    const longWav = Buffer.from(encodeWav16(long, 16000));
    await rejects(t, completions.create(user(audio(longWav.subarray(0, 200 << 10).toString('base64'), 'wav'))), OpenAI.APIError, { status: 413, code: 'too_large' }, 'body over maxBodyBytes');
  });

  t.test(`auth over ${transport}`, async (t) => {
    const server = await startTestServer({ transport, apiKeys: ['secret-1', 'secret-2'] });
    t.teardown(() => server.close(0));
    const request = user({ type: 'text', text: 'hi' });
    await rejects(t, new OpenAI({ apiKey: 'wrong', baseURL: `${server.url}/v1`, maxRetries: 0 }).chat.completions.create(request), OpenAI.AuthenticationError, { status: 401, code: 'unauthorized' }, 'wrong key');
    const missing = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify(request) });
    t.equal(missing.status, 401, 'missing key: 401');
    t.match(await missing.json(), { error: { type: 'authentication_error', message: /missing API key/ } }, 'missing key: says so');
    const ok = await new OpenAI({ apiKey: 'secret-2', baseURL: `${server.url}/v1`, maxRetries: 0 }).chat.completions.create(request);
    t.match(ok.choices[0]!.message.content, /read "hi"/, 'a configured key is accepted');
  });

  t.test(`long audio and a full queue over ${transport}`, async (t) => {
    const long = new Float32Array(70 * 16000).fill(0.1);
    const longWav = Buffer.from(encodeWav16(long, 16000)).toString('base64');
    const rejecting = await startTestServer({ transport });
    t.teardown(() => rejecting.close(0));
    await rejects(
      t,
      new OpenAI({ apiKey: 'x', baseURL: `${rejecting.url}/v1`, maxRetries: 0 }).chat.completions.create(user(audio(longWav, 'wav'))),
      OpenAI.BadRequestError,
      { status: 400, code: 'limit_exceeded', param: 'messages[0].content[0].input_audio.data', message: /70000 ms.*at most 30000 ms.*--rest-long-audio split/ },
      'restLongAudio reject: 70 s clip',
    );

    const engine = new RecordingEngine();
    const splitting = await startTestServer({ transport, restLongAudio: 'split' }, { engine });
    t.teardown(() => splitting.close(0));
    const reply = await new OpenAI({ apiKey: 'x', baseURL: `${splitting.url}/v1`, maxRetries: 0 }).chat.completions.create(user(audio(longWav, 'wav')));
    t.match(reply.choices[0]!.message.content, /heard 70000 ms of audio/, 'restLongAudio split: all the audio reaches the engine');
    const parts = engine.turns[0]!.messages[0]!.parts.map((p) => (p.type === 'audio' ? p.samples.length / 16 : -1));
    t.same(parts, [30000, 30000, 10000], 'as clips no longer than the model accepts, in order');

    const slow = await startTestServer({ transport, maxQueue: 1, maxBatch: 1, echoCapacity: 1, echoTokenDelayMs: 20 });
    t.teardown(() => slow.close(0));
    const client = new OpenAI({ apiKey: 'x', baseURL: `${slow.url}/v1`, maxRetries: 0 });
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => client.chat.completions.create(user({ type: 'text', text: 'hi' }))));
    const limited = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    t.ok(limited.length >= 1 && limited.every((e) => e instanceof OpenAI.RateLimitError), `a full queue answers RateLimitError (${limited.length} of 6)`);
    t.ok(results.some((r) => r.status === 'fulfilled'), 'while admitted requests complete');
    const first = limited[0] as RateLimitError;
    t.equal(first.headers.get('retry-after'), '1', 'with Retry-After from busyRetryAfterMs');
    t.equal(first.code, 'busy', 'and code busy');
  });

  t.test(`engine failures over ${transport}`, async (t) => {
    const echo = new EchoEngine({ tokenDelayMs: 0, capacity: 8 });
    // Fails a turn whose text says so: before any text, or after the first word.
    const failing: Engine = {
      name: 'failing',
      capacity: () => 8,
      models: () => echo.models(),
      close: () => Promise.resolve(),
      run: async (batch, emit) => {
        for (const turn of batch) {
          const text = turn.messages.at(-1)!.parts.map((p) => (p.type === 'text' ? p.text : '')).join('');
          if (text === 'late') emit(turn.id, { type: 'delta', text: 'partial ' });
          emit(turn.id, { type: 'error', error: new EarshotError('engine_error', `engine failed (${text})`, { retryable: true }) });
        }
      },
    };
    const server = await startTestServer({ transport }, { engine: failing });
    t.teardown(() => server.close(0));
    const client = new OpenAI({ apiKey: 'x', baseURL: `${server.url}/v1`, maxRetries: 0 });
    await rejects(t, client.chat.completions.create(user({ type: 'text', text: 'early' })), OpenAI.InternalServerError, { status: 502, code: 'engine_error' }, 'engine error, whole answer');
    await rejects(t, client.chat.completions.create({ ...user({ type: 'text', text: 'early' }), stream: true }), OpenAI.InternalServerError, { status: 502, code: 'engine_error' }, 'engine error before the stream starts: JSON with its status');
    const stream = await client.chat.completions.create({ ...user({ type: 'text', text: 'late' }), stream: true });
    let text = '';
    let failure: unknown;
    try {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    } catch (err) {
      failure = err;
    }
    t.equal(text, 'partial ', 'the text before the failure was streamed');
    t.ok(failure instanceof OpenAI.APIError, 'an engine error mid-stream reaches the SDK as an APIError');
    t.match((failure as APIError).message, /engine failed \(late\)/, 'carrying the engine\'s message');
  });
}
