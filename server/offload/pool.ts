/**
 * Audio threads: Opus/PCM decoding and VAD for native sessions run on worker threads, so the
 * event-loop thread only moves bytes (bench/RESULTS.md: decode + VAD is most of a frame's
 * cost, and one thread saturates one core). Each stream is pinned to the thread with the
 * fewest streams; packets and control records travel through that thread's shared ring in
 * order; VAD events come back by postMessage.
 */
import type { Worker } from 'node:worker_threads';
import { EarshotError } from '../../protocol/errors.js';
import type { Logger } from '../observability/log.js';
import { startThread, stopThread } from '../threads.js';
import type { BatchConfirmerOptions } from '../vad/confirmer.js';
import { deliverEvent, type AudioHost, type AudioStream, type StreamEntry, type StreamHandlers } from './host.js';
import { STOP_THREAD, type StreamSpec, type ThreadData, type ThreadEvent } from './messages.js';
import { createRing, RECORD_CONTROL_CLOSE, RECORD_CONTROL_FLUSH, RECORD_CONTROL_OPEN, RingWriter } from './ring.js';

/** About 4 s of 20 ms Opus frames for 250 streams: a thread that falls that far behind sheds load. */
const RING_BYTES = 4 << 20;
const EMPTY = new Uint8Array(0);
/** A stopping thread that has not ended by then is terminated. */
const STOP_GRACE_MS = 3_000;

interface Thread {
  worker: Worker;
  writer: RingWriter;
  streams: Map<number, StreamEntry>;
  stopping: boolean;
}

/** A stream's handle in the event-loop thread; its methods only queue bytes. */
class OffloadedAudio implements AudioStream {
  private closed = false;

  constructor(
    private readonly pool: AudioThreadPool,
    private readonly thread: Thread,
    readonly id: number,
  ) {}

  push(bytes: Uint8Array, start: number): void {
    if (this.closed) return;
    if (!this.thread.writer.write(this.id, bytes.length - start, bytes, start))
      throw new EarshotError('busy', 'audio processing is behind; this packet was dropped', { retryAfterMs: 100 });
  }

  flush(done: (committed: boolean) => void): void {
    const entry = this.thread.streams.get(this.id);
    if (this.closed || !entry) return done(false);
    entry.flushDone.push(done);
    this.pool.control(this.thread, this.id, RECORD_CONTROL_FLUSH, EMPTY);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.thread.streams.delete(this.id);
    this.pool.control(this.thread, this.id, RECORD_CONTROL_CLOSE, EMPTY);
  }
}

export class AudioThreadPool implements AudioHost {
  private readonly threads: Thread[] = [];
  private readonly logger: Logger;
  private nextStream = 1;
  private closing = false;

  /** `silero`: each thread runs its own batched confirmer with these options (absent with --vad webrtc). */
  private constructor(
    count: number,
    private readonly silero: BatchConfirmerOptions | undefined,
    logger: Logger,
  ) {
    this.logger = logger.child({ room: 'audio-threads' });
    for (let i = 0; i < count; i++) this.threads.push(this.spawn());
  }

  static start(count: number, silero: BatchConfirmerOptions | undefined, logger: Logger): AudioThreadPool {
    return new AudioThreadPool(count, silero, logger);
  }

  get size(): number {
    return this.threads.length;
  }

  attach(spec: StreamSpec, handlers: StreamHandlers): AudioStream {
    const thread = this.threads.reduce((a, b) => (b.streams.size < a.streams.size ? b : a));
    const id = this.nextStream++ & 0x7fff_ffff;
    thread.streams.set(id, { segment: handlers.segment, error: handlers.error, flushDone: [] });
    this.control(thread, id, RECORD_CONTROL_OPEN, new TextEncoder().encode(JSON.stringify(spec)));
    return new OffloadedAudio(this, thread, id);
  }

  /** Control records wait for room: they are rare and must not be lost. */
  control(thread: Thread, id: number, kind: number, payload: Uint8Array): void {
    if (thread.writer.write(id, kind, payload)) return;
    setTimeout(() => this.control(thread, id, kind, payload), 5).unref();
  }

  /** Each thread is asked to stop (its Silero thread must release the model first), and terminated if it has not within STOP_GRACE_MS. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(
      this.threads.map((t) => {
        t.stopping = true;
        return stopThread(t.worker, STOP_THREAD, STOP_GRACE_MS);
      }),
    );
  }

  private spawn(): Thread {
    const ring = createRing(RING_BYTES);
    const worker = startThread(import.meta.url, 'thread', { workerData: { ring, silero: this.silero } satisfies ThreadData });
    const thread: Thread = { worker, writer: new RingWriter(ring), streams: new Map(), stopping: false };
    worker.on('message', (event: ThreadEvent) => this.deliver(thread, event));
    worker.on('error', (err) => this.logger.error({ err }, 'audio thread failed'));
    worker.on('exit', (code) => this.replace(thread, code));
    worker.unref();
    return thread;
  }

  private deliver(thread: Thread, event: ThreadEvent): void {
    const entry = thread.streams.get(event.stream);
    if (entry) deliverEvent(entry, event);
  }

  /** A dead thread's streams end (their state is gone); a fresh thread takes its place. */
  private replace(thread: Thread, code: number): void {
    if (thread.stopping || this.closing) return;
    this.logger.error({ code, streams: thread.streams.size }, 'audio thread exited; replacing it');
    const lost = new EarshotError('engine_unavailable', 'audio processing failed for this session; reconnect', { fatal: true });
    for (const handlers of thread.streams.values()) handlers.error(lost);
    thread.streams.clear();
    const index = this.threads.indexOf(thread);
    if (index >= 0) this.threads[index] = this.spawn();
  }
}
