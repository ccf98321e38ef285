/**
 * What waking up costs on this machine: the same small piece of work timed back to back and as
 * the first thing a thread does after sleeping, and a worker_threads postMessage to a thread that
 * sleeps (the post has to wake it) and to one that spins (no wake-up). The measure behind
 * hybrid's per-call Silero cost (bench/silero-calls.ts) and the 2-core voice-lag figures: on
 * this KVM guest, work done once per wake-up costs many times its back-to-back price, so every
 * extra wake-up of a thread (an inference call, a message between threads) is paid in full.
 * Wall time around synchronous calls (the thread does nothing else meanwhile).
 *
 *   node --import tsx bench/wakeup.ts [--gaps 0,1,3,18] [--count 300]
 */
import { openSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';

const { values: args } = parseArgs({ options: { gaps: { type: 'string', default: '0,1,3,18' }, count: { type: 'string', default: '300' } } });
const GAPS = args.gaps.split(',').map(Number);
const COUNT = Number(args.count);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Mean µs of `work`, each after `gapMs` of sleep (0: back to back). */
async function timed(gapMs: number, work: () => void): Promise<number> {
  let total = 0;
  for (let i = 0; i < COUNT; i++) {
    if (gapMs > 0) await sleep(gapMs);
    const start = performance.now();
    work();
    total += performance.now() - start;
  }
  return (total / COUNT) * 1000;
}

const devNull = openSync('/dev/null', 'w');
const eight = Buffer.alloc(8);
/** A worker that answers nothing: it sleeps in its event loop, or spins so it never sleeps. */
const worker = (spin: boolean) => new Worker(spin ? 'for (;;) {}' : "require('node:worker_threads').parentPort.on('message', () => {})", { eval: true });
const message = { steps: [5], closed: [] as number[] };

process.stdout.write(`earshot bench/wakeup.ts: mean µs of wall time per call, ${COUNT} calls each\n\n| work | ${GAPS.map((g) => (g ? `after ${g} ms asleep` : 'back to back')).join(' | ')} |\n|---|${GAPS.map(() => '---').join('|')}|\n`);
const rows: [string, () => Promise<(gap: number) => Promise<number>>][] = [
  ['write(2) of 8 bytes to /dev/null', async () => (gap) => timed(gap, () => writeSync(devNull, eight))],
  ['postMessage to a sleeping worker', async () => {
    const sleeping = worker(false);
    await sleep(300);
    return async (gap) => timed(gap, () => sleeping.postMessage(message));
  }],
  ['postMessage to a spinning worker', async () => {
    const spinning = worker(true);
    await sleep(300);
    return async (gap) => timed(gap, () => spinning.postMessage(message));
  }],
];
for (const [label, setup] of rows) {
  const measure = await setup();
  const cells: string[] = [];
  for (const gap of GAPS) cells.push((await measure(gap)).toFixed(1));
  process.stdout.write(`| ${label} | ${cells.join(' | ')} |\n`);
}
process.exit(0);
