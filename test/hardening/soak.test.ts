/** CI-sized soak: 2,000 session open/close cycles leave no session, connection or retained memory behind. */
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { metricValue, startTestServer } from '../helpers/server.js';
import { runCycles } from './soak.js';
import { until } from '../helpers/until.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MiB = 1 << 20;

/** Heap and typed-array memory still held after full collections. */
async function settledHeap(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(50);
  }
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

t.test('2,000 session cycles: no growth', async (t) => {
  const server = await startTestServer({ echoTokenDelayMs: 0 });
  t.teardown(() => server.close(0));
  // Warm-up: JIT, WASM instances, pools and metric label sets reach their steady size.
  await runCycles(server.wsUrl, 1_000, 20);
  const before = await settledHeap();
  await runCycles(server.wsUrl, 2_000, 20);
  await until(async () => (await metricValue(server, 'earshot_connections')) <= 0);
  const growth = (await settledHeap()) - before;
  t.equal(await metricValue(server, 'earshot_sessions'), 0, 'no session left');
  t.equal(await metricValue(server, 'earshot_connections'), 0, 'no connection left');
  t.equal(await metricValue(server, 'earshot_turns_total'), 3_000, 'every turn ended');
  // A leaked session holds its decoder, history and audio (tens of KiB): 2,000 of them would be tens of MiB.
  // What remains is tap's own bookkeeping; measured flat (under 1 MiB) over 8,000 further cycles.
  t.ok(growth < 3 * MiB, `heap after GC grew ${(growth / MiB).toFixed(2)} MiB over 2,000 cycles`);
});
