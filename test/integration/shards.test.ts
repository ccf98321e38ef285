/** --shards 2 on uws: sockets live on two listening threads, limits, batches, metrics and drain stay whole. */
import t from 'tap';
import { speechFixture } from '../fixtures/speech.js';
import { TestClient } from '../helpers/native-client.js';
import { metricValue, startTestServer } from '../helpers/server.js';
import { RealtimeClient } from '../realtime/helpers.js';

const SHARDS = 2;
// With SO_REUSEPORT spreading connections at random, 12 all landing on one of 2 shards has odds 1 in 2,048.
const SESSIONS = 12;

t.test('sessions on different shards share one engine batch, and metrics add up', async (t) => {
  // The batch leaves when the last session's turn arrives; the long gather window keeps a slow machine's stragglers in it
  // (so nothing else goes through this server: a REST turn would wait the whole window).
  const server = await startTestServer({ transport: 'uws', shards: SHARDS, coalesce: false, maxBatch: SESSIONS, maxWaitMs: 60_000, tts: 'none' });
  t.teardown(() => server.close(0));
  t.match(server.transport.name, /2 shards/, 'the sharded transport runs');
  const fixture = await speechFixture(10, { sentences: 1 });
  const clients = await Promise.all(Array.from({ length: SESSIONS }, () => TestClient.connect(`${server.wsUrl}/v1/stream`)));
  await Promise.all(clients.map((c) => c.hello({ codec: 'opus', sampleRate: 16000, vad: { bargeIn: false } })));
  const perShard = server.transport.shardConnections!();
  t.equal(perShard.length, SHARDS, 'one count per shard');
  t.ok(perShard.every((open) => open > 0), `every shard holds sessions (${perShard.join('/')})`);
  t.equal(await metricValue(server, 'earshot_shard_connections'), SESSIONS, '/metrics: the shards\' connections add up');
  t.equal(await metricValue(server, 'earshot_connections'), SESSIONS, '/metrics: the global count agrees');
  await Promise.all(clients.map((c) => c.stream(fixture.opusPackets, 20)));
  const turns = await Promise.all(clients.map((c) => c.waitForTurnsDone(1, 60_000)));
  t.ok(turns.every((done) => done.length === 1 && /heard \d+ ms/.test(done[0]!.text)), 'every session got its turn back through its shard');
  t.equal(await metricValue(server, 'earshot_batch_size_sum'), SESSIONS, 'the engine ran every turn');
  t.equal(await metricValue(server, 'earshot_batch_size_count'), 1, 'in one batch, spanning both shards');
  for (const c of clients) c.close();
});

// The tests below send text only: WebRTC VAD alone, so no shard loads a Silero model it would not use.
t.test('Realtime sessions and REST work through shards: what the door sends on open arrives first', async (t) => {
  const server = await startTestServer({ transport: 'uws', shards: SHARDS, vad: 'webrtc', tts: 'none' });
  t.teardown(() => server.close(0));
  const clients = await Promise.all(Array.from({ length: 4 }, () => RealtimeClient.connect(`${server.wsUrl}/v1/realtime`)));
  await Promise.all(clients.map((c) => c.waitForType('session.created')));
  t.ok(clients.every((c) => c.events[0]?.type === 'session.created'), 'session.created comes first on every session');
  for (const c of clients) {
    c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'hello' }] } });
    c.send({ type: 'response.create' });
  }
  const done = await Promise.all(clients.map((c) => c.waitForType('response.done')));
  t.match(done, clients.map(() => ({ response: { status: 'completed' } })), 'every session gets its response');
  const reply = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: server.ctx.primaryModel().id, messages: [{ role: 'user', content: 'hello' }] }),
  });
  t.equal(reply.status, 200, 'REST crosses from a shard to the engine and back');
  t.match(await reply.json(), { choices: [{ message: { content: String } }] }, 'with an OpenAI-shaped body');
  for (const c of clients) c.close();
});

t.test('the ws transport takes --shards as one listening thread, and works', async (t) => {
  const server = await startTestServer({ transport: 'ws', shards: SHARDS, vad: 'webrtc', tts: 'none' });
  t.teardown(() => server.close(0));
  t.notMatch(server.transport.name, /shards/, 'one thread');
  const client = await TestClient.connect(`${server.wsUrl}/v1/stream`);
  await client.hello({ codec: 'opus', sampleRate: 16000 });
  client.send({ type: 'text', text: 'hello' });
  const [turn] = await client.waitForTurnsDone(1);
  t.equal(turn?.finish, 'stop', 'a session takes a turn');
  client.close();
});

t.test('drain closes every shard\'s sessions with 1001 and stops accepting', async (t) => {
  const server = await startTestServer({ transport: 'uws', shards: SHARDS, vad: 'webrtc', tts: 'none' });
  const clients = await Promise.all(Array.from({ length: 8 }, () => TestClient.connect(`${server.wsUrl}/v1/stream`)));
  await Promise.all(clients.map((c) => c.hello({ codec: 'pcm16', sampleRate: 16000 })));
  const codes = Promise.all(clients.map((c) => c.waitForClose()));
  await server.close(1_000);
  t.same(await codes, clients.map(() => 1001), 'every session closed with 1001');
  await t.rejects(fetch(`${server.url}/health`), 'nothing listens on the port afterwards');
});
