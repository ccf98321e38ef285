/**
 * The Silero inference thread of one BatchConfirmer: loads silero_vad.onnx, then runs each batch
 * the confirmer hands over in shared memory as one ONNX call. onnxruntime-node's `run` is
 * synchronous under its promise (it calls the binding inside setImmediate), so it gets a thread
 * of its own: the confirmer's thread never waits on inference. Recurrent state (h, c) lives here,
 * per stream.
 */
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { CHUNK_SAMPLES, STATE_SIZE, type BatchBuffers, type ToSilero, type FromSilero } from './silero-messages.js';

const { modelPath, buffers } = workerData as { modelPath: string; buffers: BatchBuffers };
const input = new Float32Array(buffers.input);
const ids = new Int32Array(buffers.ids);
const resets = new Uint8Array(buffers.resets);
const probabilities = new Float32Array(buffers.probabilities);
/** Per stream: h then c, each [2 layers][64]. */
const states = new Map<number, Float32Array>();
const sr = new ort.Tensor('int64', BigInt64Array.from([16_000n]), []);
const LAYER = STATE_SIZE / 2;

function post(message: FromSilero): void {
  parentPort!.postMessage(message);
}

/** A failure the next call reports (BatchConfirmer.failNextCall, for tests). */
let fault: string | undefined;

/** One call over rows [first, first + count). */
async function run(session: ort.InferenceSession, first: number, count: number): Promise<void> {
  if (fault !== undefined) {
    const message = fault;
    fault = undefined;
    throw new Error(message);
  }
  const h = new Float32Array(STATE_SIZE * count);
  const c = new Float32Array(STATE_SIZE * count);
  for (let b = 0; b < count; b++) {
    const state = resets[first + b] ? undefined : states.get(ids[first + b]!);
    if (!state) continue;
    // [2, B, 64]: layer l of stream b sits at (l * B + b) * 64.
    for (let l = 0; l < 2; l++) {
      h.set(state.subarray(l * LAYER, (l + 1) * LAYER), (l * count + b) * LAYER);
      c.set(state.subarray(STATE_SIZE + l * LAYER, STATE_SIZE + (l + 1) * LAYER), (l * count + b) * LAYER);
    }
  }
  // A copy: the binding takes ordinary ArrayBuffers, not shared ones.
  const chunks = input.slice(first * CHUNK_SAMPLES, (first + count) * CHUNK_SAMPLES);
  const out = await session.run({
    input: new ort.Tensor('float32', chunks, [count, CHUNK_SAMPLES]),
    sr,
    h: new ort.Tensor('float32', h, [2, count, LAYER]),
    c: new ort.Tensor('float32', c, [2, count, LAYER]),
  });
  const p = out.output!.data as Float32Array;
  const hn = out.hn!.data as Float32Array;
  const cn = out.cn!.data as Float32Array;
  for (let b = 0; b < count; b++) {
    probabilities[first + b] = p[b]!;
    const id = ids[first + b]!;
    let state = states.get(id);
    if (!state) states.set(id, (state = new Float32Array(STATE_SIZE * 2)));
    for (let l = 0; l < 2; l++) {
      state.set(hn.subarray((l * count + b) * LAYER, (l * count + b + 1) * LAYER), l * LAYER);
      state.set(cn.subarray((l * count + b) * LAYER, (l * count + b + 1) * LAYER), STATE_SIZE + l * LAYER);
    }
  }
}

async function load(): Promise<ort.InferenceSession> {
  const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' });
  for (const name of ['input', 'sr', 'h', 'c']) if (!session.inputNames.includes(name)) throw new Error(`the model has no input '${name}' (Silero VAD v4 has input, sr, h, c)`);
  // One silent chunk proves the runtime can run the model, before any session relies on it.
  ids[0] = -1;
  resets[0] = 1;
  input.fill(0, 0, CHUNK_SAMPLES);
  await run(session, 0, 1);
  states.delete(-1);
  return session;
}

let session: ort.InferenceSession;
try {
  session = await load();
  post({ type: 'ready' });
} catch (err) {
  post({ type: 'failed', message: (err as Error).message });
  process.exit(1);
}

async function steps(counts: number[]): Promise<void> {
  let first = 0;
  for (const count of counts) {
    await run(session, first, count);
    first += count;
  }
}

/** The call in progress, if any: a stop waits for it before the model is released. */
let working: Promise<void> = Promise.resolve();

parentPort!.on('message', (message: ToSilero) => {
  for (const id of message.closed) states.delete(id);
  if (message.fault !== undefined) fault = message.fault;
  if (message.stop) {
    void working.then(() => session.release()).finally(() => parentPort!.close());
    return;
  }
  if (message.steps.length === 0) return;
  working = steps(message.steps).then(
    () => post({ type: 'done' }),
    (err: unknown) => post({ type: 'failed', message: (err as Error).message }),
  );
});
