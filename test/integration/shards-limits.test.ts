/** --shards 2 on uws: connection, per-address and per-key limits count every shard's sockets. */
import t from 'tap';
import { startTestServer } from '../helpers/server.js';
import { handshake } from '../hardening/upgrade-client.js';

const SHARDS = 2;

t.test('limits hold across shards: per address, in total, per key', async (t) => {
  const server = await startTestServer({ transport: 'uws', shards: SHARDS, maxConnectionsPerIp: 4, trustProxy: true, vad: 'webrtc', tts: 'none' });
  t.teardown(() => server.close(0));
  const tries = await Promise.all(Array.from({ length: 10 }, () => handshake(`${server.wsUrl}/v1/stream`, { 'x-forwarded-for': '10.0.0.9' })));
  const accepted = tries.filter((h) => h.ok);
  t.equal(accepted.length, 4, 'four from one address, wherever they landed');
  t.ok(tries.every((h) => h.ok || h.status === 429), 'the rest are refused with 429');
  t.equal(server.transport.shardConnections!().reduce((a, b) => a + b, 0), 4, 'the shards hold four between them');
  for (const h of accepted) if (h.ok) h.socket.close();

  const capped = await startTestServer({ transport: 'uws', shards: SHARDS, maxConnections: 5, vad: 'webrtc', tts: 'none' });
  t.teardown(() => capped.close(0));
  const total = await Promise.all(Array.from({ length: 10 }, () => handshake(`${capped.wsUrl}/v1/stream`)));
  t.equal(total.filter((h) => h.ok).length, 5, 'five in total');
  t.ok(total.every((h) => h.ok || h.status === 503), 'the rest are refused with 503');
  for (const h of total) if (h.ok) h.socket.close();

  const metered = await startTestServer({ transport: 'uws', shards: SHARDS, apiKeys: ['k1'], requestsPerMinutePerKey: 3, vad: 'webrtc', tts: 'none' });
  t.teardown(() => metered.close(0));
  const keyed = await Promise.all(Array.from({ length: 8 }, () => handshake(`${metered.wsUrl}/v1/stream`, { authorization: 'Bearer k1' })));
  t.equal(keyed.filter((h) => h.ok).length, 3, 'three upgrades a minute for one key, whichever shard took them');
  const rest = await fetch(`${metered.url}/v1/models`, { headers: { authorization: 'Bearer k1' } });
  t.equal(rest.status, 429, 'and REST through any shard shares the same budget');
  for (const h of keyed) if (h.ok) h.socket.close();
});
