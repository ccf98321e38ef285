/** Connection limits, origin allow-list, per-key rate, idle timeout and maximum duration, on every transport. */
import t, { type Test } from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { RealtimeClient } from '../realtime/helpers.js';
import { TestClient } from '../helpers/native-client.js';
import { PROTOCOL_VERSION } from '../../protocol/native.js';
import { metricValue, startTestServer, TRANSPORTS } from '../helpers/server.js';
import { closed, handshake, type Handshake } from './upgrade-client.js';
import { until } from '../helpers/until.js';

/** Servers that judge no speech and speak no reply: no Silero or Flite threads to start for each of them. */
const NO_SPEECH = { vad: 'webrtc', tts: 'none' } as const;

function refused(t: Test, result: Handshake, status: number, code: string, what: string): void {
  t.equal(result.ok, false, `${what}: refused`);
  if (result.ok) return;
  t.equal(result.status, status, `${what}: HTTP ${status}`);
  t.match(JSON.parse(result.body), { error: { code, message: String } }, `${what}: JSON error ${code}`);
}

for (const transport of TRANSPORTS) {
  t.test(`connection limits over ${transport}`, async (t) => {
    // trustProxy lets one test machine stand for several client addresses.
    const server = await startTestServer({ ...NO_SPEECH, transport, maxConnections: 3, maxConnectionsPerIp: 2, trustProxy: true });
    t.teardown(() => server.close(0));
    const url = `${server.wsUrl}/v1/stream`;
    const from = (ip: string) => handshake(url, { 'x-forwarded-for': ip });
    const a1 = await from('10.0.0.1');
    const a2 = await from('10.0.0.1');
    t.ok(a1.ok && a2.ok, 'two from one address');
    const a3 = await from('10.0.0.1');
    refused(t, a3, 429, 'rate_limited', 'third from the same address');
    t.ok(!a3.ok && a3.headers['retry-after'], 'with a retry-after hint');
    const b1 = await from('10.0.0.2');
    t.ok(b1.ok, 'another address still gets in');
    refused(t, await from('10.0.0.3'), 503, 'overloaded', 'past the total');
    if (a1.ok) {
      const gone = closed(a1.socket);
      a1.socket.close();
      await gone;
    }
    await until(async () => (await metricValue(server, 'earshot_connections')) <= 2);
    const again = await from('10.0.0.3');
    t.ok(again.ok, 'a closed connection frees its slot');
    for (const h of [a2, b1, again]) if (h.ok) h.socket.close();
  });

  t.test(`origin allow-list over ${transport}`, async (t) => {
    const server = await startTestServer({ ...NO_SPEECH, transport, allowedOrigins: ['https://app.example'] });
    t.teardown(() => server.close(0));
    const url = `${server.wsUrl}/v1/stream`;
    refused(t, await handshake(url, { origin: 'https://evil.example' }), 403, 'forbidden', 'a foreign page');
    refused(t, await handshake(url, { origin: 'null' }), 403, 'forbidden', 'an opaque origin');
    refused(t, await handshake(`${server.wsUrl}/v1/realtime`, { origin: 'https://evil.example' }), 403, 'forbidden', 'a foreign page on the Realtime door');
    const listed = await handshake(url, { origin: 'https://app.example' });
    t.ok(listed.ok, 'a listed origin');
    const own = await handshake(url, { origin: server.url });
    t.ok(own.ok, 'the page this server serves (same host:port)');
    const bare = await handshake(url);
    t.ok(bare.ok, 'a non-browser client without Origin');
    if (own.ok) {
      const client = await TestClient.connect(url, { origin: server.url });
      const ready = await client.hello({ codec: 'pcm16', sampleRate: 16000 });
      t.equal(ready.type, 'ready', 'the same-origin page gets a session');
      client.close();
    }
    for (const h of [listed, own, bare]) if (h.ok) h.socket.close();
  });

  t.test(`origins by default over ${transport}: only this server's own page and non-browser clients`, async (t) => {
    const server = await startTestServer({ ...NO_SPEECH, transport });
    t.teardown(() => server.close(0));
    const url = `${server.wsUrl}/v1/stream`;
    refused(t, await handshake(url, { origin: 'https://evil.example' }), 403, 'forbidden', 'a foreign page');
    const port = new URL(server.url).port;
    refused(t, await handshake(url, { origin: `http://rebound.example:${port}`, host: `rebound.example:${port}` }), 403, 'forbidden', 'a DNS-rebound page');
    const own = await handshake(url, { origin: server.url });
    t.ok(own.ok, 'the page this server serves');
    const any = await startTestServer({ ...NO_SPEECH, transport, allowedOrigins: ['*'] });
    t.teardown(() => any.close(0));
    const foreign = await handshake(`${any.wsUrl}/v1/stream`, { origin: 'https://evil.example' });
    t.ok(foreign.ok, '--allowed-origins * lets any page in');
    for (const h of [own, foreign]) if (h.ok) h.socket.close();
  });

  t.test(`keys and the hello deadline on the native door over ${transport}`, async (t) => {
    const server = await startTestServer({ ...NO_SPEECH, transport, apiKeys: ['k1'], helloTimeoutMs: 300, idleTimeoutMs: 0 });
    t.teardown(() => server.close(0));
    const url = `${server.wsUrl}/v1/stream`;
    refused(t, await handshake(url, { authorization: 'Bearer wrong' }), 401, 'unauthorized', 'a wrong key on the upgrade');
    refused(t, await handshake(`${url}?token=wrong`), 401, 'unauthorized', 'a wrong ?token=');

    // Keyless upgrades get in (the key may come in hello), but only until the deadline, however chatty.
    const lingering = await TestClient.connect(url);
    const chatter = setInterval(() => lingering.send({ type: 'commit' }), 50);
    t.teardown(() => clearInterval(chatter));
    t.match(await lingering.waitFor((m) => m.type === 'error' && m.fatal), { code: 'protocol_order', message: /no hello within 300 ms/ }, 'no hello: told why');
    t.equal(await lingering.waitForClose(), 1008, 'and closed with 1008');
    clearInterval(chatter);

    const badHello = await TestClient.connect(url);
    badHello.send({ type: 'hello', codec: 'pcm16', sampleRate: 16000, token: 'wrong' });
    t.match(await badHello.waitFor((m) => m.type === 'error'), { code: 'unauthorized', fatal: true }, 'a wrong hello token');
    t.equal(await badHello.waitForClose(), 1008);

    const newer = await TestClient.connect(url);
    newer.send({ type: 'hello', codec: 'pcm16', sampleRate: 16000, token: 'k1', version: PROTOCOL_VERSION + 1 });
    t.match(await newer.waitFor((m) => m.type === 'error'), { code: 'unsupported', message: /newer/, fatal: true }, 'a newer protocol version is refused');
    t.equal(await newer.waitForClose(), 1003);

    const byQuery = await TestClient.connect(`${url}?token=k1`);
    const ready = await byQuery.hello({ codec: 'pcm16', sampleRate: 16000 });
    t.equal(ready.version, PROTOCOL_VERSION, 'ready carries the protocol version');
    await sleep(500);
    t.equal(byQuery.closeCode, undefined, 'a session past hello outlives the deadline');
    const byHello = await TestClient.connect(url);
    t.equal((await byHello.hello({ codec: 'pcm16', sampleRate: 16000, token: 'k1' })).type, 'ready', 'the key in hello');
    byQuery.close();
    byHello.close();
  });

  t.test(`idle timeout and maximum duration over ${transport}`, async (t) => {
    const idle = await startTestServer({ ...NO_SPEECH, transport, idleTimeoutMs: 300 });
    t.teardown(() => idle.close(0));
    const quiet = await TestClient.connect(`${idle.wsUrl}/v1/stream`);
    await quiet.hello({ codec: 'pcm16', sampleRate: 16000 });
    t.match(await quiet.waitFor((m) => m.type === 'error'), { code: 'idle_timeout', fatal: true }, 'a silent client is told why');
    t.equal(await quiet.waitForClose(), 1001, 'then closed with 1001 (going away)');

    const lasting = await startTestServer({ ...NO_SPEECH, transport, idleTimeoutMs: 0, sessionMaxDurationMs: 500 });
    t.teardown(() => lasting.close(0));
    const chatty = await TestClient.connect(`${lasting.wsUrl}/v1/stream`);
    await chatty.hello({ codec: 'pcm16', sampleRate: 16000 });
    const keepTalking = setInterval(() => chatty.send({ type: 'cancel' }), 50);
    t.teardown(() => clearInterval(keepTalking));
    t.match(await chatty.waitFor((m) => m.type === 'error'), { code: 'session_expired', fatal: true }, 'a busy session still ends at its maximum duration');
    t.equal(await chatty.waitForClose(), 1001, 'closed with 1001');
    clearInterval(keepTalking);
    await until(async () => (await metricValue(lasting, 'earshot_sessions')) <= 0);
    t.equal(await metricValue(lasting, 'earshot_sessions'), 0, 'no session left');
  });
}

t.test('an active client outlives the idle timeout', async (t) => {
  const server = await startTestServer({ idleTimeoutMs: 200 });
  t.teardown(() => server.close(0));
  const client = await TestClient.connect(`${server.wsUrl}/v1/stream`);
  await client.hello({ codec: 'pcm16', sampleRate: 16000 });
  // 20 ms frames of silence for 5 idle periods: the sweep must see the activity.
  const frame = new Uint8Array(640);
  for (let i = 0; i < 50; i++) {
    client.sendAudio(frame);
    await sleep(20);
  }
  t.equal(client.closeCode, undefined, 'still open');
  t.notOk(client.messages.some((m) => m.type === 'error'), 'and never warned');
  client.close();
});

t.test('per-key request rate on REST and websocket upgrades', async (t) => {
  const server = await startTestServer({ ...NO_SPEECH, apiKeys: ['key-one', 'key-two'], requestsPerMinutePerKey: 3 });
  t.teardown(() => server.close(0));
  const models = (key: string) => fetch(`${server.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
  for (let i = 0; i < 3; i++) t.equal((await models('key-one')).status, 200, `request ${i + 1} within the allowance`);
  const over = await models('key-one');
  t.equal(over.status, 429, 'the fourth in the minute is refused');
  t.ok(Number(over.headers.get('retry-after')) >= 1, 'with retry-after');
  t.match(await over.json(), { error: { type: 'rate_limit_error', code: 'rate_limited' } }, 'in the OpenAI error shape');
  refused(t, await handshake(`${server.wsUrl}/v1/stream`, { authorization: 'Bearer key-one' }), 429, 'rate_limited', 'a websocket with the same key');
  // The Realtime SDK in a browser offers its key as a subprotocol: metered as that key, not as the address.
  refused(t, await handshake(`${server.wsUrl}/v1/realtime`, {}, ['realtime', 'openai-insecure-api-key.key-one']), 429, 'rate_limited', 'the same key as a Realtime subprotocol');
  const byProtocol = await handshake(`${server.wsUrl}/v1/realtime`, {}, ['realtime', 'openai-insecure-api-key.key-two']);
  t.ok(byProtocol.ok, 'another key as a subprotocol has its own allowance');
  if (byProtocol.ok) byProtocol.socket.close();
  t.equal((await models('key-two')).status, 200, 'another key has its own allowance');
  t.equal((await fetch(`${server.url}/health`)).status, 200, '/health is not metered');
  // Invalid keys share their address's bucket, so inventing keys buys nothing.
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) statuses.push((await models(`made-up-${i}`)).status);
  t.same(statuses, [401, 401, 401, 429], 'made-up keys are metered per address');
});

t.test('the Realtime door says why before an idle close', async (t) => {
  const server = await startTestServer({ ...NO_SPEECH, idleTimeoutMs: 300 });
  t.teardown(() => server.close(0));
  const client = await RealtimeClient.connect(`${server.wsUrl}/v1/realtime`);
  await client.waitForType('session.created');
  t.match(await client.waitForType('error'), { error: { code: 'idle_timeout' } }, 'an error event names the limit');
  await until(() => client.closeCode !== undefined);
  t.equal(client.closeCode, 1001, 'then closed with 1001');
});
