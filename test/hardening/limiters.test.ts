/** The limit mechanisms on a fake clock: token bucket, lifetime sweep, connection counts, origins, request audio. */
import t from 'tap';
import type { EarshotError } from '../../protocol/errors.js';
import { checkRequestAudio } from '../../server/http/request-audio.js';
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
  const allowed = (headers: Record<string, string>, origins = list, listenHost = '127.0.0.1') => originAllowed(headers, origins, listenHost);
  t.ok(allowed({}), 'no Origin: not a browser');
  t.notOk(allowed({ origin: 'https://evil.example', host: '127.0.0.1:8080' }, []), 'empty list: a foreign page is refused');
  t.ok(allowed({ origin: 'https://evil.example' }, ['*']), '* allows any');
  t.ok(allowed({ origin: 'https://app.example' }), 'a listed origin');
  t.ok(allowed({ origin: 'http://127.0.0.1:8080', host: '127.0.0.1:8080' }, []), 'our own page, by address');
  t.ok(allowed({ origin: 'http://LOCALHOST:8080', host: 'localhost:8080' }, []), 'our own page, by loopback name');
  t.ok(allowed({ origin: 'http://[::1]:8080', host: '[::1]:8080' }, []), 'our own page, over IPv6 loopback');
  t.ok(allowed({ origin: 'http://Earshot.local:8080', host: 'earshot.local:8080' }, list, 'earshot.local'), 'our own page, by the name we listen on');
  t.notOk(allowed({ origin: 'http://rebound.example:8080', host: 'rebound.example:8080' }, []), 'DNS rebinding: same origin by a name that is not ours');
  t.notOk(allowed({ origin: 'http://127.0.0.1:9090', host: '127.0.0.1:8080' }, []), 'another port is another origin');
  t.notOk(allowed({ origin: 'https://evil.example', host: 'earshot.local' }));
  t.notOk(allowed({ origin: 'not a url', host: 'earshot.local' }));
});

t.test('request audio', async (t) => {
  t.doesNotThrow(() => checkRequestAudio(120_000, 120_000));
  t.throws(() => checkRequestAudio(120_001, 120_000, 'messages'), { code: 'limit_exceeded', param: 'messages' });
});
