/**
 * Server CPU per frame and GC share of one load, against this tree's server or another
 * commit's (issue 14 item 4: the frame path before and after its allocations went). The same
 * generator (bench/load.ts), the same GC probe (bench/gc-probe.ts, preloaded) and the same
 * sessions drive both; only the server process comes from `--root`.
 *
 *   node --import tsx bench/frame-cost.ts [--root DIR] [--sessions 300] [--seconds 20] [--config '{"vad":"webrtc"}'] [--label NAME]
 *
 * `--root` is a checkout of the other commit with node_modules beside it, e.g.
 *   mkdir /tmp/earshot-before && git archive d12a7ec | tar -x -C /tmp/earshot-before && ln -s "$PWD/node_modules" /tmp/earshot-before/
 * `--config` is merged into the server's config; a commit from before an option existed
 * refuses it (its config is strict), so give the options both sides know.
 * Prints one line and appends it as JSON to bench/results/frame-cost.jsonl.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { speechFixture } from '../test/fixtures/speech.js';
import { runRamp } from './capacity.js';
import { voiceOf } from './load.js';
import { round } from './stats.js';
import { WEB_RATE, webLikePackets } from './web-packets.js';

const args = process.argv.slice(2);
const arg = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const root = arg('root');
const sessions = Number(arg('sessions') ?? 300);
const seconds = Number(arg('seconds') ?? 20);
const config = JSON.parse(arg('config') ?? '{}') as Record<string, unknown>;
const label = arg('label') ?? (root ? `root ${root}` : 'this tree');
const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));

const fixtures = await Promise.all([0, 1, 2, 3].map((id) => speechFixture(id)));
const voices = fixtures.flatMap((f) => [voiceOf(f.opusPackets), voiceOf(webLikePackets(f.samples16k), WEB_RATE)]);
const ramp = await runRamp(voices, {
  transport: 'uws',
  steps: [sessions],
  warmupMs: 3000,
  windowMs: seconds * 1000,
  config,
  heapSampleMs: 5000,
  ...(root ? { root } : {}),
  log: (line) => process.stdout.write(`${line}\n`),
});
const step = ramp.steps[0]!;
const result = {
  date: new Date().toISOString(),
  label,
  root: root ?? '.',
  config,
  sessions,
  windowS: step.windowS,
  serverUsPerFrame: step.serverUsPerFrame,
  gcShare: step.gc.share,
  gcMs: step.gc.ms,
  majorGcs: step.gc.major,
  serverCores: step.cpu.server,
  frameLagMs: step.frameLagMs,
  errors: step.errors,
  heap: step.heap,
};
process.stdout.write(
  `${label}: ${sessions} sessions, ${result.serverUsPerFrame} µs server CPU per frame, GC ${round(result.gcShare * 100, 2)}% of server CPU (${result.gcMs} ms, ${result.majorGcs} full GCs in ${result.windowS} s), ` +
    `main thread allocates ~${step.heap?.bytesPerFrame} B per frame (sampled over 5 s more)\n`,
);
for (const [site, bytes] of step.heap?.sites ?? []) process.stdout.write(`  ${String(bytes).padStart(8)} B/frame  ${site}\n`);
mkdirSync(RESULTS, { recursive: true });
appendFileSync(`${RESULTS}frame-cost.jsonl`, `${JSON.stringify(result)}\n`);
process.exit(0);
