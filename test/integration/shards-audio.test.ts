/** --shards 2 on uws: audio decoded and segmented in the shards, idle limits from shard audio, a failing shard. */
import t from 'tap';
import type { ShardedTransport } from '../../server/transport/sharded.js';
import { speechFixture } from '../fixtures/speech.js';
import { TestClient, type TurnRecord } from '../helpers/native-client.js';
import { metricValue, startTestServer } from '../helpers/server.js';
import { checkTurns, NO_BARGE_IN, QUEUED_TURNS } from '../helpers/turn-checks.js';
import { until } from '../helpers/until.js';

const SHARDS = 2;
// With SO_REUSEPORT spreading connections at random, 12 all landing on one of 2 shards has odds 1 in 2,048.
const SESSIONS = 12;
const bounds = (turns: TurnRecord[]) => turns.map((turn) => [turn.startMs, turn.endMs, turn.audioMs, turn.text]);

t.test('audio is decoded and segmented in the shards: same turns as one loop, commit order, bad packets, frames counted', async (t) => {
  const sharded = await startTestServer({ ...QUEUED_TURNS, transport: 'uws', shards: SHARDS, tts: 'none' });
  const single = await startTestServer({ ...QUEUED_TURNS, transport: 'uws', shards: 1, tts: 'none' });
  t.teardown(() => Promise.all([sharded.close(0), single.close(0)]));
  const fixture = await speechFixture(0);
  const runs: TurnRecord[][] = [];
  for (const server of [sharded, single]) {
    const client = await TestClient.connect(`${server.wsUrl}/v1/stream`);
    await client.hello({ codec: 'opus', sampleRate: 16000, vad: NO_BARGE_IN });
    await client.stream(fixture.opusPackets, 20);
    // Acknowledged once every frame before it is judged: the shard reports its frame count ahead of that.
    client.send({ type: 'commit', ack: true });
    await client.waitFor((m) => m.type === 'committed');
    runs.push(await client.waitForTurnsDone(fixture.truth.length));
    client.close();
  }
  checkTurns(t, runs[0]!, fixture, 'sharded');
  t.same(bounds(runs[0]!), bounds(runs[1]!), 'identical boundaries to the single event loop');
  t.equal(await metricValue(sharded, 'earshot_audio_frames_total'), fixture.opusPackets.length, '/metrics counts the frames the shard decoded');

  const client = await TestClient.connect(`${sharded.wsUrl}/v1/stream`);
  await client.hello({ codec: 'opus', sampleRate: 16000, vad: NO_BARGE_IN });
  client.sendAudio(new Uint8Array(100).fill(0xff));
  t.match(await client.waitFor((m) => m.type === 'error'), { code: 'bad_audio', fatal: false }, 'a corrupt packet is reported to its session');
  // Half of the first sentence, a commit, then the rest at once: the commit must cut where it was sent.
  const firstEnd = fixture.truth[0]!.startMs + (fixture.truth[0]!.endMs - fixture.truth[0]!.startMs) / 2;
  const cut = Math.round(firstEnd / 20);
  await client.stream(fixture.opusPackets.slice(0, cut), 20);
  client.send({ type: 'commit', ack: true });
  await client.stream(fixture.opusPackets.slice(cut, cut + 25), 20);
  await client.waitFor((m) => m.type === 'committed');
  const [turn] = await client.waitForTurnsDone(1);
  t.ok(Math.abs(turn!.endMs! - cut * 20) <= 40, `the committed utterance ends where the commit was sent (${turn!.endMs} vs ${cut * 20}), not where the audio after it got to`);
  client.close();
});

t.test('a shard that fails closes its sessions with 1011 and is replaced; the other shard goes on', async (t) => {
  // Default --vad (hybrid): the failing shard's Silero thread must be closed as it ends, or the process aborts.
  const server = await startTestServer({ transport: 'uws', shards: SHARDS, tts: 'none' });
  t.teardown(() => server.close(0));
  const transport = server.transport as ShardedTransport;
  const clients = await Promise.all(Array.from({ length: SESSIONS }, () => TestClient.connect(`${server.wsUrl}/v1/stream`)));
  await Promise.all(clients.map((c) => c.hello({ codec: 'pcm16', sampleRate: 16000 })));
  const onFailed = transport.shardConnections()[0]!;
  t.ok(onFailed > 0 && onFailed < SESSIONS, `both shards hold sessions (${transport.shardConnections().join('/')})`);
  await transport.failShard(0);
  // The failed thread has ended, so its sockets are closed; their close frames may still be on the way.
  await until(() => clients.filter((c) => c.closeCode !== undefined).length >= onFailed);
  const closed = clients.filter((c) => c.closeCode !== undefined);
  t.equal(closed.length, onFailed, 'the failed shard\'s sessions closed');
  t.ok(closed.every((c) => c.closeCode === 1011), 'with 1011');
  const survivors = clients.filter((c) => c.closeCode === undefined);
  for (const c of survivors) c.send({ type: 'text', text: 'still there?' });
  const turns = await Promise.all(survivors.map((c) => c.waitForTurnsDone(1)));
  t.ok(turns.every(([turn]) => turn?.finish === 'stop'), 'the other shard\'s sessions still take turns');
  const fresh = await Promise.all(Array.from({ length: SESSIONS }, () => TestClient.connect(`${server.wsUrl}/v1/stream`)));
  await Promise.all(fresh.map((c) => c.hello({ codec: 'pcm16', sampleRate: 16000 })));
  t.ok(transport.shardConnections()[0]! > 0, `the replacement shard takes sessions (${transport.shardConnections().join('/')})`);
  for (const c of [...survivors, ...fresh]) c.close();
});

t.test('audio decoded in a shard keeps its session active for the idle limit', async (t) => {
  const server = await startTestServer({ transport: 'uws', shards: SHARDS, vad: 'webrtc', idleTimeoutMs: 1_000, tts: 'none' });
  t.teardown(() => server.close(0));
  const client = await TestClient.connect(`${server.wsUrl}/v1/stream`);
  await client.hello({ codec: 'pcm16', sampleRate: 16000 });
  // 3 s of silence in real time: only audio frames, none of which crosses to the main thread.
  await client.stream(Array.from({ length: 150 }, () => new Uint8Array(640)), 20, 1);
  t.equal(client.closeCode, undefined, 'still open after three idle limits of audio');
  t.equal(await client.waitForClose(), 1001, 'closed once the audio stops');
  t.match(client.messages.at(-1), { type: 'error', code: 'idle_timeout' }, 'for being idle');
});
