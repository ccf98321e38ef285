/** EarshotClient against a real server: turns as async iterables, cancel, backpressure, reconnect. */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { EarshotClient, EarshotServerError, fileSource, settle, streamAudio, type Turn } from '../../clients/node/index.js';
import { echoReply } from '../../server/engines/echo/engine.js';
import { speechFixture } from '../fixtures/speech.js';
import { freePort, startTestServer, TRANSPORTS } from '../helpers/server.js';

async function nextTurn(turns: AsyncIterator<Turn>): Promise<Turn> {
  const next = await turns.next();
  if (next.done) throw new Error('turn stream ended');
  return next.value;
}

// One server for the tests that need nothing else of it. Coalescing off: a file streamed
// faster than real time would otherwise have its later sentences answered together.
const server = await startTestServer({ coalesce: false });
t.teardown(() => server.close(0));

t.test('invalid options are refused before any connection', async (t) => {
  t.throws(() => new EarshotClient({ url: 'ftp://127.0.0.1:1/v1/stream' }), { name: 'TypeError', message: /http\(s\):\/\/ or ws\(s\):\/\//u });
  t.throws(() => new EarshotClient({ url: '127.0.0.1:8080' }), /give the server's address, e.g. http:\/\/127\.0\.0\.1:8080/);
  t.throws(() => new EarshotClient({ url: 'ws://127.0.0.1:1/v1/stream', vad: { silenceMs: 1 } }), /silenceMs/);
  t.throws(() => new EarshotClient({ url: 'ws://127.0.0.1:1/v1/stream', highWaterMark: 10, lowWaterMark: 20 }), /lowWaterMark/);
});

t.test('the server address: an http(s) base URL finds /v1/stream, a websocket URL is kept', async (t) => {
  const urlOf = (address: string) => new EarshotClient({ url: address }).url;
  t.equal(urlOf('http://127.0.0.1:8080'), 'ws://127.0.0.1:8080/v1/stream', 'the REST examples\' EARSHOT_URL');
  t.equal(urlOf('https://voice.example/v1/'), 'wss://voice.example/v1/stream', 'an OpenAI-style base URL');
  t.equal(urlOf('ws://127.0.0.1:8080/v1/stream'), 'ws://127.0.0.1:8080/v1/stream');
  t.equal(urlOf('https://proxy.example/earshot/v1/stream?token=k'), 'wss://proxy.example/earshot/v1/stream?token=k', 'a full path is left alone');
  const client = new EarshotClient({ url: server.url });
  t.equal((await client.connect()).engine, 'echo', 'and it connects');
  await client.close();
});

t.test('a rate the server does not take fails connect() with its error code', async (t) => {
  const client = new EarshotClient({ url: `${server.wsUrl}/v1/stream`, codec: 'pcm16', sampleRate: 44100 });
  const err = await client.connect().catch((e: unknown) => e);
  t.type(err, EarshotServerError);
  t.equal((err as EarshotServerError).code, 'unsupported');
  t.equal(client.state, 'closed');
});

t.test('a file streamed through a tiny send buffer still yields one reply per sentence', async (t) => {
  const fixture = await speechFixture(0);
  const source = await fileSource(await readFile(fixture.opusPath));
  // A 2 KiB high-water mark makes sendAudio wait for the socket many times over.
  const client = new EarshotClient({ url: `${server.wsUrl}/v1/stream`, codec: source.codec, sampleRate: source.sampleRate, vad: { bargeIn: false }, highWaterMark: 2048, lowWaterMark: 0 });
  const ready = await client.connect();
  t.equal(ready.engine, 'echo');
  t.equal(ready.testEngine, true);
  const collected: { info: Turn['info']; streamed: string; finish: string }[] = [];
  const reader = (async () => {
    for await (const turn of client.turns()) {
      let streamed = '';
      for await (const piece of turn.deltas()) streamed += piece;
      collected.push({ info: turn.info, streamed, finish: (await turn.done).finish });
    }
  })();
  const sentMs = await streamAudio(client, source, { fast: true });
  t.ok(Math.abs(sentMs - fixture.durationMs) <= 40, `sent ${sentMs} ms of a ${fixture.durationMs} ms file`);
  await settle(client);
  await client.close();
  await reader;
  t.equal(collected.length, fixture.truth.length, 'one turn per sentence');
  collected.forEach((turn, i) => {
    t.equal(turn.finish, 'stop');
    t.equal(turn.info.source, 'audio');
    t.match(turn.streamed, new RegExp(`^Echo test engine, turn ${i + 1}: heard ${turn.info.audioMs} ms of audio`));
  });
});

t.test('a cancelled turn is reported as cancelled, with what streamed before it', async (t) => {
  const slow = await startTestServer({ echoTokenDelayMs: 150 });
  t.teardown(() => slow.close(0));
  const client = new EarshotClient({ url: `${slow.wsUrl}/v1/stream` });
  await client.connect();
  t.teardown(() => client.close());
  const turns = client.turns();
  client.text('tell me everything');
  const turn = await nextTurn(turns);
  t.equal(turn.info.source, 'text');
  const deltas = turn.deltas();
  const first = await deltas.next();
  t.equal(first.done, false);
  client.cancel();
  const result = await turn.done;
  t.equal(result.finish, 'cancelled');
  t.ok(result.text.startsWith(first.value as string));
  const full = echoReply({ turn: 1, audioMs: 0, rms: 0, text: 'tell me everything' });
  t.ok(result.text.length < full.length, 'the reply was cut short');
  t.equal(turn.text, result.text, 'nothing arrived after done');
  // The session goes on: the next turn runs to the end.
  client.text('and now?');
  const next = await nextTurn(turns);
  t.equal((await next.done).finish, 'stop');
});

for (const transport of TRANSPORTS) {
  t.test(`reconnects with backoff after the server restarts on the same port (${transport})`, async (t) => {
    // A fixed port: uSockets sets SO_REUSEADDR only when asked for a port, and without it the
    // closed connections' TIME_WAIT would block listening there again for a minute.
    const port = await freePort();
    let restarting = await startTestServer({ transport, port });
    t.teardown(() => restarting.close(0));
    const client = new EarshotClient({ url: `${restarting.wsUrl}/v1/stream`, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
    const first = await client.connect();
    t.teardown(() => client.close());
    const states: string[] = [];
    client.on('state', (s) => states.push(s));
    const turns = client.turns();

    let attempts = 0;
    const readyAgain = new Promise<string>((resolve) => client.on('ready', (m) => resolve(m.sessionId)));
    const retrying = new Promise<void>((resolve) => client.on('reconnecting', () => ++attempts === 2 && resolve()));
    await restarting.close(0);
    await retrying; // the server is down: at least one attempt has failed
    restarting = await startTestServer({ transport, port });
    const second = await readyAgain;
    t.not(second, first.sessionId, 'a new session');
    t.same(states.slice(0, 1), ['reconnecting']);
    t.equal(client.state, 'open');

    client.text('are you back?');
    const turn = await nextTurn(turns);
    t.equal((await turn.done).finish, 'stop', 'the same turns() iterator sees turns of the new session');
});
}
