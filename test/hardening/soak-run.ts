/**
 * `npm run soak [-- minutes [sessions]]`: a spawned server under `sessions` concurrent
 * native sessions (each a few turns, then reconnect) for `minutes`, its RSS and heap read
 * from /metrics every 5 s into a JSON-lines file (EARSHOT_SOAK_OUT, default soak-<time>.jsonl).
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { spawnServer } from './spawn.js';
import { sessionCycle } from './soak.js';

const minutes = Number(process.argv[2] ?? 10);
const sessions = Number(process.argv[3] ?? 200);
const out = process.env.EARSHOT_SOAK_OUT ?? `soak-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`;
const server = await spawnServer(['--log-level', 'info', '--echo-token-delay-ms', '15', '--max-connections-per-ip', String(sessions * 2)]);
const wsUrl = server.url.replace(/^http/, 'ws');
const until = Date.now() + minutes * 60_000;

async function sample(): Promise<Record<string, number>> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const read = (name: string) => {
    let sum = 0;
    for (const line of text.split('\n')) if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    return sum;
  };
  return {
    rssMiB: read('process_resident_memory_bytes') / 2 ** 20,
    heapUsedMiB: read('nodejs_heap_size_used_bytes') / 2 ** 20,
    externalMiB: read('nodejs_external_memory_bytes') / 2 ** 20,
    sessions: read('earshot_sessions'),
    turns: read('earshot_turns_total'),
    errors: read('earshot_errors_total'),
  };
}

writeFileSync(out, '');
const started = Date.now();
let cycles = 0;
let failures = 0;
const timer = setInterval(() => {
  void sample().then((s) => {
    const line = { atS: Math.round((Date.now() - started) / 1000), cycles, failures, ...s };
    appendFileSync(out, `${JSON.stringify(line)}\n`);
    process.stdout.write(`${JSON.stringify(line)}\n`);
  });
}, 5_000);
await Promise.all(
  Array.from({ length: sessions }, async () => {
    while (Date.now() < until) {
      await sessionCycle(wsUrl, 3).then(
        () => cycles++,
        () => failures++,
      );
    }
  }),
);
clearInterval(timer);
const final = await sample();
appendFileSync(out, `${JSON.stringify({ atS: Math.round((Date.now() - started) / 1000), cycles, failures, final: true, ...final })}\n`);
server.child.kill('SIGTERM');
process.stdout.write(`${cycles} session cycles, ${failures} failures; samples in ${out}\n`);
process.exit(failures > 0 || final.sessions !== 0 ? 1 : 0);
