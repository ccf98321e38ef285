/** CI-sized fuzzing: 10k seeded malformed inputs per front door and input path (`npm run fuzz` throws 100k). */
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { metricValue, startTestServer } from '../helpers/server.js';
import { fuzzNative, fuzzRealtime, fuzzRest, type FuzzReport } from './fuzz.js';

const RUNS = Number(process.env.EARSHOT_FUZZ_RUNS ?? 10_000);
const SEED = Number(process.env.EARSHOT_FUZZ_SEED ?? 20240609);

t.test(`fuzz every front door with ${RUNS} inputs each, transcriptions a fifth of that (seed ${SEED})`, async (t) => {
  const server = await startTestServer({ echoTokenDelayMs: 0, maxQueue: 64 });
  t.teardown(() => server.close(0));
  const check = (report: FuzzReport, runs = RUNS) => {
    t.equal(report.inputs, runs, `${report.door}: every input sent (${report.errors} errors, ${report.accepted} accepted, ${report.reconnects} reconnects)`);
    t.ok(report.errors > report.inputs / 2, `${report.door}: most malformed inputs were refused (more than half)`);
    t.same(report.violations, [], `${report.door}: every input the protocol rejects got an error`);
  };
  check(await fuzzNative(server, { runs: RUNS, seed: SEED }, 'pcm16'));
  check(await fuzzNative(server, { runs: RUNS, seed: SEED }, 'opus'));
  check(await fuzzRealtime(server, { runs: RUNS, seed: SEED }));
  check(await fuzzRest(server, { runs: RUNS, seed: SEED }, 'chat'));
  // A fifth of the inputs: valid transcription requests decode and segment their audio (~9 ms each), and the file must fit tap's per-file timeout.
  const transcriptionRuns = Math.ceil(RUNS / 5);
  check(await fuzzRest(server, { runs: transcriptionRuns, seed: SEED }, 'transcriptions'), transcriptionRuns);
  t.equal((await fetch(`${server.url}/health`)).status, 200, 'the server is alive');
  for (let i = 0; i < 100 && (await metricValue(server, 'earshot_connections')) > 0; i++) await sleep(20);
  t.equal(await metricValue(server, 'earshot_sessions'), 0, 'no session left');
  t.equal(await metricValue(server, 'earshot_connections'), 0, 'no connection left');
  t.equal(server.ctx.scheduler.queued + server.ctx.scheduler.inFlight, 0, 'no turn left');
});
