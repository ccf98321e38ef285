/**
 * CI-sized fuzzing, one test file per front door so each fits tap's per-file timeout on a busy
 * machine: 5k seeded malformed inputs per door and input path (`npm run fuzz` throws 100k).
 */
import t from 'tap';
import type { RunningServer } from '../../server/app.js';
import { metricValue, startTestServer } from '../helpers/server.js';
import type { FuzzOptions, FuzzReport } from './fuzz.js';
import { until } from '../helpers/until.js';

export const RUNS = Number(process.env.EARSHOT_FUZZ_RUNS ?? 5_000);
const SEED = Number(process.env.EARSHOT_FUZZ_SEED ?? 20240609);

export type FuzzDoor = (server: RunningServer, options: FuzzOptions) => Promise<FuzzReport>;

/** Fuzzes each door in turn on one server, then checks that nothing was left behind. */
export function fuzzSuite(title: string, doors: { runs?: number; fuzz: FuzzDoor }[]): void {
  t.test(`${title} (seed ${SEED})`, async (t) => {
    const server = await startTestServer({ echoTokenDelayMs: 0, maxQueue: 64 });
    t.teardown(() => server.close(0));
    for (const { runs = RUNS, fuzz } of doors) {
      const report = await fuzz(server, { runs, seed: SEED });
      t.equal(report.inputs, runs, `${report.door}: every input sent (${report.errors} errors, ${report.accepted} accepted, ${report.reconnects} reconnects)`);
      t.ok(report.errors > report.inputs / 2, `${report.door}: most malformed inputs were refused (more than half)`);
      t.same(report.violations, [], `${report.door}: every input the protocol rejects got an error`);
    }
    t.equal((await fetch(`${server.url}/health`)).status, 200, 'the server is alive');
    await until(async () => (await metricValue(server, 'earshot_connections')) <= 0);
    t.equal(await metricValue(server, 'earshot_sessions'), 0, 'no session left');
    t.equal(await metricValue(server, 'earshot_connections'), 0, 'no connection left');
    t.equal(server.ctx.scheduler.queued + server.ctx.scheduler.inFlight, 0, 'no turn left');
  });
}
