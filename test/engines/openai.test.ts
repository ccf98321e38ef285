import t from 'tap';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { decodeWav } from '../../server/audio/wav.js';
import { parseMultipart } from '../../server/http/multipart.js';
import { OpenAIUpstreamEngine, type OpenAIUpstreamOptions } from '../../server/engines/openai/engine.js';
import type { Message, TurnEvent, TurnRequest } from '../../server/engines/types.js';
import { speechFixture } from '../fixtures/speech.js';
import { TestClient } from '../helpers/native-client.js';
import { freePort, startTestServer } from '../helpers/server.js';
import { until } from '../helpers/until.js';

type Seen = { url: string; headers: IncomingHttpHeaders; body: any };
type Handler = (res: ServerResponse, n: number, req: IncomingMessage) => void | Promise<void>;

const fixture = await speechFixture(2);
const first = fixture.truth[0]!;
const speech = fixture.samples16k.subarray((first.startMs - 100) * 16, (first.endMs + 100) * 16);

/** A real upstream on a local port (by default a random one); records every request it receives. */
async function upstream(t: { teardown(fn: () => unknown): void }, handler: Handler, port = 0): Promise<{ baseURL: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    // Chat requests are JSON; transcription uploads are multipart, kept as the parsed form.
    const body = req.headers['content-type']?.startsWith('multipart/') ? parseMultipart(raw, req.headers['content-type']) : raw.length > 0 ? JSON.parse(raw.toString('utf8')) : undefined;
    seen.push({ url: req.url ?? '', headers: req.headers, body });
    await handler(res, seen.length, req);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, seen };
}

function engine(baseURL: string, options: Partial<OpenAIUpstreamOptions> = {}): OpenAIUpstreamEngine {
  return new OpenAIUpstreamEngine({ baseURL, apiKey: 'sk-test-key', model: 'gemma-4-e4b', concurrency: 4, timeoutMs: 2000, retries: 2, logger: pino({ level: 'silent' }), ...options });
}

function turn(id: string, messages: Message[], signal = new AbortController().signal): TurnRequest {
  return { id, sessionId: `s-${id}`, messages, params: { maxTokens: 64, temperature: 0.2 }, signal, readyAt: performance.now() };
}

const hello: Message[] = [{ role: 'user', parts: [{ type: 'audio', samples: speech }] }];

/** Runs one turn; `onEvent` sees each event as it arrives (to abort, or to let the upstream go on). */
async function runOne(e: OpenAIUpstreamEngine, request: TurnRequest, onEvent?: (ev: TurnEvent) => void): Promise<TurnEvent[]> {
  const events: TurnEvent[] = [];
  await e.run([request], (id, ev) => {
    if (id !== request.id) throw new Error(`event for unknown turn ${id}`);
    events.push(ev);
    onEvent?.(ev);
  });
  return events;
}

const event = (data: unknown) => `data: ${JSON.stringify(data)}\n\n`;
const delta = (content: string, finish: string | null = null) => event({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content }, finish_reason: finish }] });

function streamHead(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
}

function streamAnswer(res: ServerResponse, words: string[]): void {
  streamHead(res);
  for (const word of words) res.write(delta(word));
  res.write(delta('', 'stop'));
  res.end('data: [DONE]\n\n');
}

t.test('streams deltas in order with usage; the request carries the key, params and the audio as WAV', async (t) => {
  const { baseURL, seen } = await upstream(t, async (res) => {
    streamHead(res);
    res.write(': keep-alive comment\n\n');
    res.write(event({ choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] }));
    res.write(delta('Hello'));
    // One event split across writes, with CRLF line ends: the parser must reassemble it.
    const split = delta(' world').replace(/\n/g, '\r\n');
    res.write(split.slice(0, 9));
    await new Promise((resolve) => setTimeout(resolve, 20));
    res.write(split.slice(9, -1));
    await new Promise((resolve) => setTimeout(resolve, 20));
    res.write(split.slice(-1) + delta('!', 'stop'));
    res.write(event({ choices: [], usage: { prompt_tokens: 120, completion_tokens: 3, total_tokens: 123, prompt_tokens_details: { audio_tokens: 100 } } }));
    res.end('data: [DONE]\n\n');
  });
  const messages: Message[] = [
    { role: 'system', parts: [{ type: 'text', text: 'You are terse.' }] },
    { role: 'user', parts: [{ type: 'text', text: 'earlier question' }] },
    { role: 'assistant', parts: [{ type: 'text', text: 'earlier answer' }] },
    { role: 'user', parts: [{ type: 'text', text: 'Listen:' }, { type: 'audio', samples: speech }] },
  ];
  const request = { ...turn('t1', messages), params: { maxTokens: 32, temperature: 0.7, topP: 0.9, stop: ['\n\n'], seed: 7 } };
  const events = await runOne(engine(baseURL), request);
  t.same(events, [
    { type: 'delta', text: 'Hello' },
    { type: 'delta', text: ' world' },
    { type: 'delta', text: '!' },
    { type: 'done', usage: { promptTokens: 120, completionTokens: 3, audioTokens: 100 }, finish: 'stop' },
  ]);

  t.equal(seen.length, 1);
  const { url, headers, body } = seen[0]!;
  t.equal(url, '/v1/chat/completions');
  t.equal(headers.authorization, 'Bearer sk-test-key');
  t.match(body, { model: 'gemma-4-e4b', stream: true, stream_options: { include_usage: true }, max_tokens: 32, temperature: 0.7, top_p: 0.9, stop: ['\n\n'], seed: 7 });
  t.same(body.messages.slice(0, 3), [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: [{ type: 'text', text: 'earlier question' }] },
    { role: 'assistant', content: 'earlier answer' },
  ]);
  const [text, audio] = body.messages[3].content;
  t.same(text, { type: 'text', text: 'Listen:' });
  t.equal(audio.type, 'input_audio');
  t.equal(audio.input_audio.format, 'wav');
  const wav = decodeWav(Buffer.from(audio.input_audio.data, 'base64'));
  t.equal(wav.sampleRate, 16000);
  t.equal(wav.channels.length, 1);
  t.equal(wav.channels[0]!.length, speech.length);
  let worst = 0;
  for (let i = 0; i < speech.length; i++) worst = Math.max(worst, Math.abs(wav.channels[0]![i]! - speech[i]!));
  t.ok(worst <= 1 / 32767, `the WAV holds the audio we sent (largest error ${worst})`);
});

t.test('a batch runs its turns side by side; length finish and a stream without [DONE] or usage', async (t) => {
  const { baseURL, seen } = await upstream(t, (res, _n) => {
    streamHead(res);
    const asked = seen.at(-1)!.body.messages[0].content[0]?.text as string | undefined;
    res.write(delta(`re: ${asked ?? 'audio'}`));
    res.end(delta(' more', 'length'));
  });
  const e = engine(baseURL);
  const events = new Map<string, TurnEvent[]>();
  const batch = [turn('a', [{ role: 'user', parts: [{ type: 'text', text: 'one' }] }]), turn('b', hello)];
  await e.run(batch, (id, ev) => events.set(id, [...(events.get(id) ?? []), ev]));
  t.equal(seen.length, 2);
  t.same(events.get('a'), [{ type: 'delta', text: 're: one' }, { type: 'delta', text: ' more' }, { type: 'done', usage: { promptTokens: 0, completionTokens: 2 }, finish: 'length' }]);
  t.same(events.get('b')?.[0], { type: 'delta', text: 're: audio' });
  t.equal(e.capacity(), 4);
  t.same(e.models(), [{ id: 'gemma-4-e4b', ownedBy: 'upstream', testEngine: false, inputs: { audio: true, image: false }, maxAudioMs: 30000 }]);
});

t.test('a 500 before the first token is retried, then the turn succeeds', async (t) => {
  const { baseURL, seen } = await upstream(t, (res, n) => {
    if (n === 1) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'model overloaded' } }));
      return;
    }
    streamAnswer(res, ['second', ' try']);
  });
  const events = await runOne(engine(baseURL), turn('t', hello));
  t.equal(seen.length, 2, 'the upstream saw the first request and the retry');
  t.same(events.map((ev) => ev.type), ['delta', 'delta', 'done']);
  t.same(events.at(-1), { type: 'done', usage: { promptTokens: 0, completionTokens: 2 }, finish: 'stop' });
});

t.test('a connection dropped before the first token is retried too', async (t) => {
  const { baseURL, seen } = await upstream(t, (res, n) => {
    if (n === 1) res.socket?.destroy();
    else streamAnswer(res, ['ok']);
  });
  const events = await runOne(engine(baseURL), turn('t', hello));
  t.equal(seen.length, 2);
  t.same(events, [{ type: 'delta', text: 'ok' }, { type: 'done', usage: { promptTokens: 0, completionTokens: 1 }, finish: 'stop' }]);
});

t.test('a socket reset after the first token ends the turn with an error and is not retried', async (t) => {
  let gotFirst!: () => void;
  const firstDelta = new Promise<void>((resolve) => (gotFirst = resolve));
  const { baseURL, seen } = await upstream(t, async (res, _n, req) => {
    streamHead(res);
    res.write(delta('partial'));
    // Reset only once the client holds the token: a reset can discard unread bytes.
    await firstDelta;
    req.socket.resetAndDestroy();
  });
  const events = await runOne(engine(baseURL), turn('t', hello), (ev) => ev.type === 'delta' && gotFirst());
  t.equal(seen.length, 1, 'no retry once text reached the client');
  t.equal(events.length, 2);
  t.same(events[0], { type: 'delta', text: 'partial' });
  t.match(events[1], { type: 'error', error: { name: 'EarshotError', code: 'engine_error', message: /broke the stream/ } });
});

t.test('a malformed event after the first token is an error, not retried', async (t) => {
  const { baseURL, seen } = await upstream(t, (res) => {
    streamHead(res);
    res.write(delta('fine'));
    res.end('data: {"choices": [oops\n\n');
  });
  const events = await runOne(engine(baseURL), turn('t', hello));
  t.equal(seen.length, 1);
  t.match(events, [{ type: 'delta' }, { type: 'error', error: { code: 'engine_error', message: /malformed/ } }]);
});

t.test('a silent upstream times out: before the first byte and between chunks', async (t) => {
  const { baseURL, seen } = await upstream(t, (res, n) => {
    // Request 1 never answers; request 2 sends one token and then stalls.
    if (n === 2) {
      streamHead(res);
      res.write(delta('slow'));
    }
  });
  const e = engine(baseURL, { timeoutMs: 300 });
  const silent = await runOne(e, turn('t1', hello));
  t.match(silent, [{ type: 'error', error: { code: 'timeout', message: /sent nothing for 300 ms/ } }]);
  t.equal(seen.length, 1, 'a timeout is not retried');
  const stalled = await runOne(e, turn('t2', hello));
  t.match(stalled, [{ type: 'delta', text: 'slow' }, { type: 'error', error: { code: 'timeout' } }]);
  t.equal(seen.length, 2);
});

t.test('aborting a turn mid-stream ends it cancelled and closes the upstream connection', async (t) => {
  let upstreamClosed!: (finished: boolean) => void;
  const closed = new Promise<boolean>((resolve) => (upstreamClosed = resolve));
  const { baseURL, seen } = await upstream(t, (res) => {
    res.on('close', () => upstreamClosed(res.writableFinished));
    streamHead(res);
    // Two tokens in one write: the second is parsed after the abort and must not be emitted.
    res.write(delta('before') + delta('after'));
  });
  const controller = new AbortController();
  const events = await runOne(engine(baseURL), turn('t', hello, controller.signal), (ev) => ev.type === 'delta' && controller.abort());
  t.same(events, [{ type: 'delta', text: 'before' }, { type: 'done', usage: { promptTokens: 0, completionTokens: 1 }, finish: 'cancelled' }]);
  t.equal(await closed, false, 'the upstream saw the connection close before its answer finished');
  t.equal(seen.length, 1);
});

t.test('upstream HTTP errors map to Earshot codes', async (t) => {
  const replies: Record<string, [number, Record<string, string>, string]> = {
    '401': [401, {}, JSON.stringify({ error: { message: 'invalid api key' } })],
    '404': [404, {}, JSON.stringify({ error: { message: 'The model `gemma-4-e4b` does not exist.' } })],
    '429-long': [429, { 'retry-after': '3600' }, 'slow down'],
    '400': [400, {}, JSON.stringify({ error: { message: 'max_tokens is too large' } })],
  };
  let current = '';
  const { baseURL, seen } = await upstream(t, (res) => {
    const [status, headers, body] = replies[current]!;
    res.writeHead(status, headers);
    res.end(body);
  });
  const e = engine(baseURL);
  const expected: Record<string, object> = {
    '401': { code: 'engine_error', message: /upstream "127\.0\.0\.1:\d+" refused our credentials \(401\)/ },
    '404': { code: 'not_found', message: /no model "gemma-4-e4b"/ },
    '429-long': { code: 'busy', retryable: true, retryAfterMs: 3_600_000 },
    '400': { code: 'engine_error', message: /max_tokens is too large/ },
  };
  for (const name of Object.keys(replies)) {
    current = name;
    const before = seen.length;
    const events = await runOne(e, turn(name, hello));
    t.match(events, [{ type: 'error', error: expected[name] }], name);
    t.equal(seen.length - before, 1, `${name} is not retried`);
  }
});

t.test('a 429 with a short retry-after is retried after it', async (t) => {
  const { baseURL, seen } = await upstream(t, (res, n) => {
    if (n === 1) {
      res.writeHead(429, { 'retry-after': '0' });
      res.end('busy');
    } else streamAnswer(res, ['served']);
  });
  const events = await runOne(engine(baseURL), turn('t', hello));
  t.equal(seen.length, 2);
  t.same(events[0], { type: 'delta', text: 'served' });
});

t.test('an unreachable upstream fails after the retries with engine_unavailable', async (t) => {
  const port = await freePort();
  const events = await runOne(engine(`http://127.0.0.1:${port}/v1`, { retries: 1 }), turn('t', hello));
  t.match(events, [{ type: 'error', error: { code: 'engine_unavailable', retryable: true, message: /cannot reach upstream .*ECONNREFUSED/ } }]);
});

t.test('an already aborted turn and a closed engine send nothing upstream', async (t) => {
  const { baseURL, seen } = await upstream(t, (res) => streamAnswer(res, ['x']));
  const e = engine(baseURL);
  const controller = new AbortController();
  controller.abort();
  t.same(await runOne(e, turn('t1', hello, controller.signal)), [{ type: 'done', usage: { promptTokens: 0, completionTokens: 0 }, finish: 'cancelled' }]);
  await e.close();
  t.match(await runOne(e, turn('t2', hello)), [{ type: 'error', error: { code: 'shutting_down' } }]);
  t.equal(seen.length, 0);
});

t.test('transcription turns: the upstream transcription endpoint (streamed or whole) when configured, else the chat model with a prompt', async (t) => {
  const transcribe = (id: string): TurnRequest => ({ ...turn(id, hello), kind: 'transcribe', hints: { language: 'en', prompt: 'Earshot' } });
  const { baseURL, seen } = await upstream(t, (res, n) => {
    if (n === 1) {
      streamHead(res);
      res.write(event({ type: 'transcript.text.delta', delta: 'The ' }));
      res.write(event({ type: 'transcript.text.delta', delta: 'birch.' }));
      res.end(event({ type: 'transcript.text.done', text: 'The birch.', usage: { type: 'tokens', input_tokens: 40, output_tokens: 3, input_token_details: { audio_tokens: 38 } } }));
    } else if (n === 2) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ text: 'The birch canoe.', usage: { type: 'duration', seconds: 2 } }));
    } else streamAnswer(res, ['The ', 'birch']);
  });
  const withModel = engine(baseURL, { transcriptionModel: 'whisper-large-v3' });
  t.same(await runOne(withModel, transcribe('s1')), [
    { type: 'delta', text: 'The ' },
    { type: 'delta', text: 'birch.' },
    { type: 'done', usage: { promptTokens: 40, completionTokens: 3, audioTokens: 38 }, finish: 'stop' },
  ]);
  t.same(await runOne(withModel, transcribe('s2')), [
    { type: 'delta', text: 'The birch canoe.' },
    { type: 'done', usage: { promptTokens: 0, completionTokens: 1 }, finish: 'stop' },
  ], 'an upstream that ignores stream answers whole JSON; a duration usage leaves the count to the deltas');
  const upload = seen[0]!;
  t.equal(upload.url, '/v1/audio/transcriptions');
  t.equal(upload.headers.authorization, 'Bearer sk-test-key');
  const fields = Object.fromEntries((upload.body as { name: string; data: Buffer }[]).map((p) => [p.name, p.data]));
  t.same(['model', 'response_format', 'stream', 'language', 'prompt'].map((k) => fields[k]?.toString()), ['whisper-large-v3', 'json', 'true', 'en', 'Earshot']);
  t.equal(decodeWav(fields.file!).channels[0]!.length, speech.length, 'the clip is uploaded whole as WAV');

  t.same(await runOne(engine(baseURL), transcribe('s3')), [
    { type: 'delta', text: 'The ' },
    { type: 'delta', text: 'birch' },
    { type: 'done', usage: { promptTokens: 0, completionTokens: 2 }, finish: 'stop' },
  ]);
  const chat = seen[2]!;
  t.equal(chat.url, '/v1/chat/completions', 'without a transcription model the chat model transcribes');
  t.match(chat.body.messages, [{ role: 'user', content: [{ type: 'text', text: /^Transcribe the speech.*language 'en'.*Earshot/ }, { type: 'input_audio' }] }]);
  t.equal(chat.body.messages.length, 1, 'a transcription carries no conversation');
});

t.test('an upstream that does not answer: a warning at start, /health degraded with the reason, one error per turn, ok once it answers', async (t) => {
  const port = await freePort();
  const logged: Array<{ level: number; msg: string; reason?: string }> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
  const server = await startTestServer({ engine: 'openai', upstreamUrl: `http://127.0.0.1:${port}/v1`, upstreamModel: 'gemma-4-e4b', upstreamProbeMs: 50 }, { logger });
  t.teardown(() => server.close(0));
  const health = async () => {
    const res = await fetch(`${server.url}/health`);
    return { status: res.status, body: (await res.json()) as { status: string; reason?: string } };
  };
  const healthOnce = async (status: string) => {
    await until(async () => (await health()).body.status === status);
    return health();
  };
  t.match(await healthOnce('degraded'), { status: 503, body: { status: 'degraded', reason: /cannot reach upstream "127\.0\.0\.1:\d+" \(ECONNREFUSED\)/ } }, '/health: degraded, naming the reason');
  const client = await TestClient.connect(`${server.wsUrl}/v1/stream`);
  await client.hello({ codec: 'pcm16', sampleRate: 16000 });
  client.send({ type: 'text', text: 'anyone there?' });
  const failed = await client.waitFor((m) => m.type === 'error');
  t.match(failed, { code: 'engine_unavailable', message: /cannot reach upstream/ }, 'a turn fails with the reason');
  client.send({ type: 'no-such-message' });
  await client.waitFor((m) => m.type === 'error' && m.code === 'bad_message');
  t.equal(client.messages.filter((m) => m.type === 'error' && m.code === 'engine_unavailable').length, 1, 'once');
  t.equal(logged.filter((l) => l.msg.startsWith('upstream unreachable')).length, 1, 'the start-up check warned once, however often it checked again');
  t.match(logged.find((l) => l.msg.startsWith('upstream unreachable')), { level: 40, reason: /ECONNREFUSED/ });

  await upstream(t, async (res, _n, req) => {
    if (req.method === 'GET') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data: [{ id: 'gemma-4-e4b', object: 'model' }] }));
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(delta('here now', 'stop') + 'data: [DONE]\n\n');
  }, port);
  t.match(await healthOnce('ok'), { status: 200, body: { status: 'ok' } }, '/health recovers once the upstream answers');
  t.notOk((await health()).body.reason, 'with no reason left');
  t.ok(logged.some((l) => l.msg === 'upstream reachable again'), 'and the log says so');
  client.send({ type: 'text', text: 'and now?' });
  await client.waitFor((m) => m.type === 'done');
  t.match(client.turns().at(-1), { text: 'here now', finish: 'stop' }, 'turns work again');
  client.close();
});
