/**
 * Turns → batches (replies and transcriptions alike). The only caller of Engine.run. Batching is continuous: whenever the
 * engine has free capacity, waiting turns are handed over (gathered for at most maxWaitMs
 * so turns that arrive together share a batch), even while earlier batches still run.
 * Admission control: a bounded queue; past it, submit throws `busy` with a retry hint.
 * Cancellation is the turn's AbortSignal: a queued turn leaves the queue at once, a running
 * one is left to the engine, which must finish it as cancelled.
 */
import { EarshotError } from '../../protocol/errors.js';
import { audioMsOf, type Engine, type TurnEvent, type TurnRequest } from '../engines/types.js';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';

export interface SchedulerOptions {
  maxBatch: number;
  maxWaitMs: number;
  maxQueue: number;
  busyRetryAfterMs: number;
}

export type TurnSink = (event: TurnEvent) => void;

interface Entry {
  turn: TurnRequest;
  sink: TurnSink;
  ended: boolean;
  startedAt: number;
  /** performance.now() of the first delta; 0 until then. */
  firstDeltaAt: number;
  onAbort: () => void;
}

export class Scheduler {
  private readonly engine: Engine;
  private readonly options: SchedulerOptions;
  private readonly metrics: Metrics;
  private readonly logger: Logger;
  private readonly queue: Entry[] = [];
  private readonly running = new Map<string, Entry>();
  private gatherTimer: { cancel: (handle: never) => void; handle: NodeJS.Timeout | NodeJS.Immediate } | undefined;
  private closed = false;

  constructor(engine: Engine, options: SchedulerOptions, metrics: Metrics, logger: Logger) {
    this.engine = engine;
    this.options = options;
    this.metrics = metrics;
    this.logger = logger.child({ room: 'scheduler' });
    engine.onCapacity?.(() => this.schedule());
  }

  get queued(): number {
    return this.queue.length;
  }

  get inFlight(): number {
    return this.running.size;
  }

  /** Queues a turn; events reach `sink` until exactly one `done` or `error`. Throws EarshotError('busy'). */
  submit(turn: TurnRequest, sink: TurnSink): void {
    if (this.closed) throw new EarshotError('shutting_down', 'server is shutting down', { retryable: true });
    if (this.queue.length >= this.options.maxQueue)
      throw new EarshotError('busy', `server busy: ${this.queue.length} turns queued`, { retryAfterMs: this.options.busyRetryAfterMs });
    if (turn.signal.aborted) {
      sink({ type: 'done', usage: { promptTokens: 0, completionTokens: 0 }, finish: 'cancelled' });
      return;
    }
    const entry: Entry = { turn, sink, ended: false, startedAt: 0, firstDeltaAt: 0, onAbort: () => this.abortQueued(entry) };
    turn.signal.addEventListener('abort', entry.onAbort, { once: true });
    this.queue.push(entry);
    this.metrics.queueDepth.set(this.queue.length);
    this.schedule();
  }

  /** Stops admitting turns; queued ones are cancelled, running ones finish (their owners may abort them). */
  close(): void {
    this.closed = true;
    this.cancelGather();
    for (const entry of this.queue.splice(0)) this.end(entry, { type: 'error', error: new EarshotError('shutting_down', 'server is shutting down') });
    this.metrics.queueDepth.set(0);
  }

  private cancelGather(): void {
    if (!this.gatherTimer) return;
    this.gatherTimer.cancel(this.gatherTimer.handle as never);
    this.gatherTimer = undefined;
  }

  private freeCapacity(): number {
    return this.engine.capacity() - this.running.size;
  }

  private schedule(): void {
    if (this.queue.length === 0 || this.freeCapacity() <= 0) return;
    const batchable = Math.min(this.options.maxBatch, this.freeCapacity());
    if (this.queue.length >= batchable) {
      this.dispatch();
      return;
    }
    if (this.gatherTimer) return;
    // maxWaitMs 0 still gathers what arrives in the same event-loop turn, at no added latency.
    this.gatherTimer =
      this.options.maxWaitMs === 0
        ? { cancel: clearImmediate, handle: setImmediate(() => this.dispatch()) }
        : { cancel: clearTimeout, handle: setTimeout(() => this.dispatch(), this.options.maxWaitMs) };
  }

  private dispatch(): void {
    this.cancelGather();
    while (this.queue.length > 0 && this.freeCapacity() > 0) {
      const size = Math.min(this.options.maxBatch, this.freeCapacity(), this.queue.length);
      const batch = this.takeFair(size);
      this.metrics.queueDepth.set(this.queue.length);
      this.start(batch);
    }
  }

  /**
   * Oldest first, but at most one turn of each kind per session in a batch so one chatty
   * session cannot fill it; a session's transcript may ride in the batch of its reply.
   */
  private takeFair(size: number): Entry[] {
    const taken: Entry[] = [];
    const sessions = new Set<string>();
    for (let i = 0; i < this.queue.length && taken.length < size; ) {
      const entry = this.queue[i]!;
      const key = `${entry.turn.kind ?? 'reply'}:${entry.turn.sessionId}`;
      if (sessions.has(key)) {
        i++;
        continue;
      }
      sessions.add(key);
      taken.push(entry);
      this.queue.splice(i, 1);
    }
    return taken;
  }

  private start(batch: Entry[]): void {
    const now = performance.now();
    for (const entry of batch) {
      entry.turn.signal.removeEventListener('abort', entry.onAbort);
      entry.startedAt = now;
      this.running.set(entry.turn.id, entry);
      this.metrics.queueWait.observe((now - entry.turn.readyAt) / 1000);
    }
    this.metrics.inFlight.set(this.running.size);
    this.metrics.batchSize.observe(batch.length);
    this.logger.debug({ size: batch.length, inFlight: this.running.size }, 'batch');
    const emit = (turnId: string, event: TurnEvent) => {
      const entry = this.running.get(turnId);
      if (entry) this.onEvent(entry, event);
    };
    let run: Promise<void>;
    try {
      run = this.engine.run(
        batch.map((e) => e.turn),
        emit,
      );
    } catch (err) {
      run = Promise.reject(err);
    }
    run.then(
      () => this.settle(batch, undefined),
      (err: unknown) => {
        this.logger.error({ err }, 'engine run failed');
        this.settle(batch, err);
      },
    );
  }

  /** The engine's run is over (`err`: how it failed): whatever it left unfinished ends here, so no turn can hang. */
  private settle(batch: Entry[], err: unknown): void {
    for (const entry of batch) {
      if (!entry.ended) {
        const error = err instanceof EarshotError ? err : new EarshotError('engine_error', 'the engine ended the turn without an answer', { retryable: true });
        this.onEvent(entry, { type: 'error', error });
      }
    }
    this.schedule();
  }

  private onEvent(entry: Entry, event: TurnEvent): void {
    if (entry.ended) return;
    if (event.type === 'delta') {
      if (entry.firstDeltaAt === 0) {
        entry.firstDeltaAt = performance.now();
        this.metrics.firstDelta.observe((entry.firstDeltaAt - entry.startedAt) / 1000);
      }
      // A delta that races a cancel is dropped: the client asked for silence.
      if (entry.turn.signal.aborted) return;
      entry.sink(event);
      return;
    }
    this.running.delete(entry.turn.id);
    this.metrics.inFlight.set(this.running.size);
    this.end(entry, event);
    this.schedule();
  }

  private abortQueued(entry: Entry): void {
    const index = this.queue.indexOf(entry);
    if (index < 0) return;
    this.queue.splice(index, 1);
    this.metrics.queueDepth.set(this.queue.length);
    this.end(entry, { type: 'done', usage: { promptTokens: 0, completionTokens: 0 }, finish: 'cancelled' });
  }

  /** One line per turn at info (failed turns at warn): where it came from, what it heard, where the time went, what it produced. */
  private logTurn(entry: Entry, event: TurnEvent): void {
    if (event.type === 'delta') return;
    const { turn } = entry;
    const since = (at: number) => (at === 0 ? null : Math.round(at - turn.readyAt));
    const newest = [...turn.messages].reverse().find((m) => m.role === 'user');
    const line = {
      session: turn.sessionId,
      door: turn.door ?? null,
      turn: turn.id,
      kind: turn.kind ?? 'reply',
      audioMs: newest ? audioMsOf(newest.parts) : 0,
      queueMs: since(entry.startedAt),
      firstTextMs: since(entry.firstDeltaAt),
      ...(event.type === 'done'
        ? { promptTokens: event.usage.promptTokens, completionTokens: event.usage.completionTokens, finish: event.finish }
        : { finish: 'error', code: event.error.code, error: event.error.message }),
    };
    if (event.type === 'done') this.logger.info(line, 'turn');
    else this.logger.warn(line, 'turn failed');
  }

  private end(entry: Entry, event: TurnEvent): void {
    entry.ended = true;
    entry.turn.signal.removeEventListener('abort', entry.onAbort);
    this.metrics.turns.inc({ finish: event.type === 'done' ? event.finish : 'error' });
    this.logTurn(entry, event);
    try {
      entry.sink(event);
    } catch (err) {
      this.logger.error({ err }, 'turn sink failed');
    }
  }
}
