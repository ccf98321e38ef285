/**
 * What one Silero VAD v5 call costs, by batch size and by the time since the call before: the
 * measure behind hybrid's CPU per stream (bench/vad.ts), which pays per call as much as per chunk.
 * One process, the model on this thread (as on the inference thread), real speech (fixture 0),
 * recurrent state carried from call to call; CPU time of each call alone (process.cpuUsage around
 * it), so the gap between calls is not counted. `--spin` fills the gap with a busy loop instead of
 * a sleep, to tell an idle core from a cold one.
 *
 *   node --import tsx bench/silero-calls.ts [--batches 1,5,10,20,32] [--gaps 0,1,3,18] [--calls 300] [--spin]
 */
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { defaultModelPath } from '../server/vad/confirmer.js';
import { speechFixture } from '../test/fixtures/speech.js';

const { values: args } = parseArgs({
  options: {
    batches: { type: 'string', default: '1,5,10,20,32' },
    gaps: { type: 'string', default: '0,1,3,18' },
    calls: { type: 'string', default: '300' },
    spin: { type: 'boolean', default: false },
  },
});
const CHUNK = 512;
const CONTEXT = 64;
const CALLS = Number(args.calls);
const list = (text: string) => text.split(',').map(Number);

const session = await ort.InferenceSession.create(defaultModelPath(), { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' });
const sr = new ort.Tensor('int64', BigInt64Array.from([16_000n]), []);
const speech = (await speechFixture(0)).samples16k;
const chunks = Math.floor((speech.length - CONTEXT) / CHUNK);

async function wait(ms: number): Promise<void> {
  if (ms === 0) return;
  if (!args.spin) return new Promise((resolve) => setTimeout(resolve, ms));
  const end = performance.now() + ms;
  while (performance.now() < end);
}

/** Mean CPU µs per call of `batch` streams, `gapMs` after the call before. */
async function measure(batch: number, gapMs: number): Promise<number> {
  let state: Float32Array = new Float32Array(256 * batch);
  const input = new Float32Array((CONTEXT + CHUNK) * batch);
  let next = 0;
  const call = async () => {
    // Each row a different stream: chunk k + 7b of the fixture, with the 64 samples before it.
    for (let b = 0; b < batch; b++) {
      const at = ((next + 7 * b) % chunks) * CHUNK;
      input.set(speech.subarray(at, at + CONTEXT + CHUNK), b * (CONTEXT + CHUNK));
    }
    next++;
    const out = await session.run({ input: new ort.Tensor('float32', input, [batch, CONTEXT + CHUNK]), state: new ort.Tensor('float32', state, [2, batch, 128]), sr });
    state = out.stateN!.data as Float32Array;
  };
  for (let i = 0; i < 30; i++) await call();
  let cpu = 0;
  for (let i = 0; i < CALLS; i++) {
    await wait(gapMs);
    const before = process.cpuUsage();
    await call();
    const used = process.cpuUsage(before);
    cpu += used.user + used.system;
  }
  return cpu / CALLS;
}

const gaps = list(args.gaps);
process.stdout.write(`CPU µs per Silero v5 call (per chunk in brackets), ${CALLS} calls each, gap ${args.spin ? 'spun' : 'slept'}\n`);
process.stdout.write(`batch  ${gaps.map((g) => `gap ${g} ms`.padStart(18)).join('')}\n`);
for (const batch of list(args.batches)) {
  const cells: string[] = [];
  for (const gap of gaps) {
    const perCall = await measure(batch, gap);
    cells.push(`${Math.round(perCall)} (${Math.round(perCall / batch)})`.padStart(18));
  }
  process.stdout.write(`${String(batch).padStart(5)}  ${cells.join('')}\n`);
}
await session.release();
