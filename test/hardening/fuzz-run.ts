/** `npm run fuzz [-- runs [seed]]`: the full fuzz (100k inputs per front door) against one in-process server. */
import { startServer } from '../../server/app.js';
import { metricValue } from '../helpers/server.js';
import { createLogger } from '../../server/observability/log.js';
import { fuzzNative, fuzzRealtime, fuzzRest } from './fuzz.js';

const runs = Number(process.argv[2] ?? 100_000);
const seed = Number(process.argv[3] ?? Date.now() % 1_000_000);
const server = await startServer({ host: '127.0.0.1', port: 0, engine: 'echo', echoTokenDelayMs: 0, maxQueue: 64 }, { logger: createLogger(process.env.EARSHOT_FUZZ_LOG ?? 'silent') });
process.stdout.write(`fuzzing ${server.url} with ${runs} inputs per front door, seed ${seed}\n`);
let failed = false;
const doors = [
  () => fuzzNative(server, { runs, seed }, 'pcm16'),
  () => fuzzNative(server, { runs, seed }, 'opus'),
  () => fuzzRealtime(server, { runs, seed }),
  () => fuzzRest(server, { runs, seed }, 'chat'),
  () => fuzzRest(server, { runs, seed }, 'transcriptions'),
];
for (const fuzz of doors) {
  const started = performance.now();
  const report = await fuzz();
  failed ||= report.violations.length > 0;
  process.stdout.write(`${report.door}: ${report.inputs} inputs, ${report.errors} errors, ${report.accepted} accepted, ${report.reconnects} reconnects in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  for (const violation of report.violations) process.stdout.write(`  VIOLATION ${violation}\n`);
}
await new Promise((r) => setTimeout(r, 500));
const sessions = await metricValue(server, 'earshot_sessions');
const connections = await metricValue(server, 'earshot_connections');
process.stdout.write(`after: sessions ${sessions}, connections ${connections}, rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB\n`);
failed ||= sessions !== 0 || connections !== 0;
await server.close(0);
process.stdout.write(failed ? `FAILED (reproduce with: npm run fuzz -- ${runs} ${seed})\n` : 'ok\n');
process.exit(failed ? 1 : 0);
