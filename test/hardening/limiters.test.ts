/** The limit mechanisms on a fake clock: token bucket, lifetime sweep, connection counts, origins, request audio. */
import t from 'tap';
import type { EarshotError } from '../../protocol/errors.js';
import { checkRequestAudio } from '../../server/limits/audio.js';
import { ConnectionLimiter } from '../../server/limits/connections.js';
import { LifetimeSweeper } from '../../server/limits/lifetime.js';
import { originAllowed } from '../../server/limits/origin.js';
import { RateLimiter, rateIdentity } from '../../server/limits/rate.js';

t.test('token bucket: a minute\'s allowance, refilled continuously, pruned when full', async (t) => {
  let now = 0;
  const rate = new RateLimiter(60, () => now);
  for (let i = 0; i < 60; i++) t.equal(rate.take('a'), undefined);
  const refused = rate.take('a');
  t.match(refused, { code: 'rate_limited', retryAfterMs: 1000 }, 'the 61st waits a second');
  t.equal(rate.take('b'), undefined, 'buckets are separate');
  now += 1000;
  t.equal(rate.take('a'), undefined, 'one token back after a second');
  t.ok(rate.take('a'), 'and only one');
  now += 120_000;
  rate.prune();
  t.equal(rate.tracked, 0, 'full buckets are forgotten');
  t.equal(new RateLimiter(0).take('x'), undefined, '0 = unlimited');
  t.notOk(rateIdentity('sk-secret', '1.2.3.4').includes('sk-secret'), 'bucket names never hold a key');
});

t.test('lifetime sweep: idle resets on activity; duration does not', async (t) => {
  let now = 0;
  const sweeper = new LifetimeSweeper({ idleTimeoutMs: 100, maxDurationMs: 1000 }, () => now);
  const ended: Array<[string, string]> = [];
  sweeper.track((e: EarshotError) => ended.push(['quiet', e.code]));
  const busy = sweeper.track((e: EarshotError) => ended.push(['busy', e.code]));
  const gone = sweeper.track((e: EarshotError) => ended.push(['gone', e.code]));
  gone.stop();
  t.equal(sweeper.periodMs, 25, 'sweeps at a quarter of the shortest limit');
  for (now = 25; now <= 1100; now += 25) {
    busy.active = true;
    sweeper.sweep();
  }
  t.same(ended, [['quiet', 'idle_timeout'], ['busy', 'session_expired']], 'each ended once, for its own reason; stopped ones never');
  t.equal(sweeper.size, 0);
});

t.test('connection counts: total and per address, released exactly', async (t) => {
  const limiter = new ConnectionLimiter({ maxConnections: 3, maxConnectionsPerIp: 2, retryAfterMs: 500 });
  t.equal(limiter.acquire('a'), undefined);
  t.equal(limiter.acquire('a'), undefined);
  t.match(limiter.acquire('a'), { code: 'rate_limited', httpStatus: 429 });
  t.equal(limiter.acquire('b'), undefined);
  t.match(limiter.refusal('c'), { code: 'overloaded', httpStatus: 503, retryAfterMs: 500 });
  limiter.release('a');
  limiter.release('nobody');
  t.equal(limiter.open, 2, 'releasing an unknown address changes nothing');
  t.equal(limiter.acquire('c'), undefined);
});

t.test('origins', async (t) => {
  const list = ['https://app.example'];
  t.ok(originAllowed({}, list), 'no Origin: not a browser');
  t.ok(originAllowed({ origin: 'https://evil.example' }, []), 'empty list: any');
  t.ok(originAllowed({ origin: 'https://app.example' }, list));
  t.ok(originAllowed({ origin: 'http://Earshot.local:8080', host: 'earshot.local:8080' }, list), 'same origin');
  t.notOk(originAllowed({ origin: 'http://earshot.local:9090', host: 'earshot.local:8080' }, list), 'another port is another origin');
  t.notOk(originAllowed({ origin: 'https://evil.example', host: 'earshot.local' }, list));
  t.notOk(originAllowed({ origin: 'not a url', host: 'earshot.local' }, list));
});

t.test('request audio', async (t) => {
  t.doesNotThrow(() => checkRequestAudio(120_000, 120_000));
  t.throws(() => checkRequestAudio(120_001, 120_000, 'messages'), { code: 'limit_exceeded', param: 'messages' });
});
