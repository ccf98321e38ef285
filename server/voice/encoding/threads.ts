/**
 * Opus encoding of spoken replies (and MP3 of REST speech) off the event loop: a thread holds
 * each stream's encoder and answers each job with the packets it completed, in order. A stream's
 * results come back in the order its jobs went, so a caller keeps one FIFO of waiting jobs per
 * stream. Started with the first stream; a server whose clients never ask for Opus or MP3 pays
 * nothing.
 */
import type { Worker } from 'node:worker_threads';
import type { OpusEncodeRate } from '../../audio/opus-encoder.js';
import type { Logger } from '../../observability/log.js';
import { startThread, stopThread } from '../../threads.js';
import type { EncodingJob, EncodingResult } from './messages.js';

type Waiter = (result: Uint8Array[] | Error) => void;

export class EncodingThread {
  private worker: Worker | undefined;
  private readonly waiting = new Map<number, Waiter[]>();
  private nextStream = 1;
  private owed = 0;
  private readonly logger: Logger;

  constructor(logger: Logger) {
    this.logger = logger;
  }

  /** A stream of 24 kHz PCM to 20 ms packets at `rate`. */
  open(rate: OpusEncodeRate): EncodingStream {
    return this.openStream(rate);
  }

  /** A stream of 24 kHz PCM to MP3 (REST speech): each answer is one chunk of bytes. */
  openMp3(): EncodingStream {
    return this.openStream('mp3');
  }

  private openStream(format: OpusEncodeRate | 'mp3'): EncodingStream {
    const stream = this.nextStream++;
    this.waiting.set(stream, []);
    this.post(format === 'mp3' ? { type: 'open', stream, mp3: true } : { type: 'open', stream, rate: format });
    return new EncodingStream(this, stream);
  }

  /** Posts a job that answers with packets; `done` gets them (or the error) in the stream's order. */
  request(job: Extract<EncodingJob, { type: 'encode' | 'flush' }>, done: Waiter): void {
    const waiters = this.waiting.get(job.stream);
    // Its encoder went with a thread that exited.
    if (!waiters) return done(new Error('the encoding thread exited'));
    waiters.push(done);
    this.post(job, job.type === 'encode' ? [job.pcm.buffer as ArrayBuffer] : []);
    // The thread keeps the process alive only while it owes answers.
    if (this.owed++ === 0) this.worker?.ref();
  }

  /** Jobs posted and not yet answered: audio that is made but not yet sent. */
  get unanswered(): number {
    return this.owed;
  }

  private answered(): void {
    if (--this.owed === 0) this.worker?.unref();
  }

  /** Drops the stream: its unanswered jobs are never answered. */
  close(stream: number): void {
    if (!this.waiting.delete(stream)) return;
    this.post({ type: 'close', stream });
  }

  async stop(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    this.owed = 0;
    if (worker) await stopThread(worker, { type: 'stop' }, 2000);
  }

  private post(job: EncodingJob, transfer: ArrayBuffer[] = []): void {
    this.start().postMessage(job, transfer);
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = startThread(import.meta.url, 'thread');
    worker.on('message', (result: EncodingResult) => {
      this.answered();
      this.waiting.get(result.stream)?.shift()?.('packets' in result ? result.packets : new Error(result.error));
    });
    worker.on('error', (err) => this.logger.error({ err }, 'encoding thread failed'));
    worker.on('exit', (code) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.logger.warn({ code }, 'encoding thread exited');
      this.owed = 0;
      // Every open stream loses its encoder: its waiting jobs fail, later jobs fail at once.
      for (const [stream, waiters] of this.waiting) {
        for (const waiter of waiters.splice(0)) waiter(new Error(`encoding thread exited with code ${code}`));
        this.waiting.delete(stream);
      }
    });
    worker.unref();
    this.worker = worker;
    return worker;
  }
}

export class EncodingStream {
  constructor(
    private readonly thread: EncodingThread,
    private readonly stream: number,
  ) {}

  /** A copy of `pcm` goes to the thread (the caller's may be a view on a larger buffer). */
  push(pcm: Int16Array, done: Waiter): void {
    this.thread.request({ type: 'encode', stream: this.stream, pcm: pcm.slice() }, done);
  }

  flush(done: Waiter): void {
    this.thread.request({ type: 'flush', stream: this.stream }, done);
  }

  close(): void {
    this.thread.close(this.stream);
  }
}
