/**
 * The mlx engine: N worker.py processes, each decoding several turns in one batch.
 *
 * Routing: a turn goes to the worker that served its session last if that worker has room
 * (its prompt prefix is warm there), else to the ready worker with the most room. A worker
 * counts a turn against its room until it confirmed the turn's end, so a cancelled turn
 * holds its sequence until the worker really dropped it; a worker handed more than it has
 * room for queues the rest itself.
 * Failure: a worker that exits, sends garbage or stays silent for hangTimeoutMs (no pong and
 * no token) is killed; its turns end with a retryable `engine_unavailable` and the slot is
 * restarted with exponential backoff.
 * Cancellation: an aborted turn ends at once with done/cancelled; the worker is told to drop
 * it and anything it still sends for that turn is ignored.
 */
import type { Logger } from 'pino';
import { EarshotError } from '../../../protocol/errors.js';
import { newestAudioOnly } from '../history.js';
import type { Engine, EngineLoading, Message, ModelInfo, TurnEvent, TurnRequest } from '../types.js';
import { promptOf } from '../transcribe.js';
import type { Loading, Probe, WirePart, WireTurn, WorkerMessage } from './messages.js';
import { WorkerProcess } from './worker-process.js';

export interface MlxEngineOptions {
  /** Hugging Face id or local path, e.g. mlx-community/gemma-4-E4B-it-bf16. */
  model: string;
  /** Worker processes; each loads its own copy of the model. */
  workers: number;
  /** Python with mlx-vlm, numpy and msgpack installed (server/engines/mlx/requirements.txt). */
  python: string;
  /** Sequences one worker decodes at once; the worker's default (8) when unset. */
  maxBatchPerWorker?: number;
  /** A starting worker with no download or load progress for this long is killed (a download that moves may take longer). */
  readyTimeoutMs: number;
  pingIntervalMs: number;
  /** A ready worker silent this long (no pong, no token) is killed and replaced. */
  hangTimeoutMs: number;
  /** close(): how long in-flight turns may run on before the workers are told to stop. */
  drainTimeoutMs?: number;
  /** close(): how long a worker gets to exit after `shutdown` before it is killed. */
  shutdownGraceMs?: number;
  /** First restart delay after a crash; doubles per consecutive failure up to 30 s. */
  restartBackoffMs?: number;
  env?: Record<string, string>;
  logger: Logger;
}

export interface MlxWorkerStatus {
  slot: number;
  pid: number | undefined;
  state: 'starting' | 'ready' | 'dead';
  inFlight: number;
  maxBatch: number;
  restarts: number;
  /** Download/load progress while starting. */
  loading: Loading | undefined;
  /** The worker's look at its own prompts once loaded (BOS, audio tokens per second). */
  probe: Probe | undefined;
  peakMemoryBytes: number | undefined;
}

const MAX_AUDIO_MS = 30_000;
const MAX_BACKOFF_MS = 30_000;
/** Sessions remembered for affinity; the oldest is forgotten first. */
const AFFINITY_LIMIT = 4096;

interface Slot {
  index: number;
  worker: WorkerProcess;
  failures: number;
  restarts: number;
  restartTimer: NodeJS.Timeout | undefined;
}

interface ActiveTurn {
  request: TurnRequest;
  emit: (turnId: string, event: TurnEvent) => void;
  worker: WorkerProcess;
  deltas: number;
  settle: () => void;
  onAbort: () => void;
}

const WORKER_ERRORS: Record<string, (message: string) => EarshotError> = {
  bad_request: (m) => new EarshotError('bad_message', m),
  unsupported: (m) => new EarshotError('unsupported', m),
  audio_too_long: (m) => new EarshotError('limit_exceeded', m, { param: 'audio' }),
  out_of_memory: (m) => new EarshotError('engine_error', `out of memory: ${m}`, { retryable: true, retryAfterMs: 1000 }),
  shutting_down: (m) => new EarshotError('shutting_down', m),
};

function workerError(code: string, message: string): EarshotError {
  return WORKER_ERRORS[code]?.(message) ?? new EarshotError('engine_error', `mlx worker: ${message}`);
}

function wireParts(message: Message): WirePart[] {
  return message.parts.map((part) => {
    if (part.type === 'text') return { type: 'text', text: part.text };
    if (part.type === 'audio') return { type: 'audio', pcm: Buffer.from(part.samples.buffer, part.samples.byteOffset, part.samples.byteLength) };
    throw new EarshotError('unsupported', 'the mlx engine does not accept images');
  });
}

function wireTurn(request: TurnRequest): WireTurn {
  const { maxTokens, temperature, topP, stop } = request.params;
  return {
    turnId: request.id,
    // Earlier clips go as notes: the worker hears only the newest message (conversation.py says why).
    // A transcription is an ordinary turn for the worker: the instruction travels in the prompt.
    messages: newestAudioOnly(promptOf(request)).map((m) => ({ role: m.role, parts: wireParts(m) })),
    params: { maxTokens, temperature, topP, stop },
  };
}

export class MlxEngine implements Engine {
  readonly name = 'mlx';
  private readonly slots: Slot[] = [];
  private readonly turns = new Map<string, ActiveTurn>();
  private readonly affinity = new Map<string, number>();
  private readonly capacityListeners: Array<() => void> = [];
  private readonly log: Logger;
  private closing = false;
  private batchId = 0;
  private drained: (() => void) | undefined;
  private startup: { resolve: () => void; reject: (err: Error) => void; failed: Set<number> } | undefined;
  /** Resolves once one worker is ready; rejects if every worker failed to start. */
  readonly ready: Promise<void>;

  private constructor(private readonly options: MlxEngineOptions) {
    this.log = options.logger.child({ engine: 'mlx' });
    this.ready = new Promise<void>((resolve, reject) => {
      this.startup = { resolve, reject, failed: new Set() };
    });
    // Handled by whoever awaits it; a server that is still loading must not die of an unobserved rejection.
    this.ready.catch(() => undefined);
  }

  /** Spawns the workers and resolves once one is ready; rejects (after closing) if every worker failed to start. */
  static async start(options: MlxEngineOptions): Promise<MlxEngine> {
    const engine = MlxEngine.create(options);
    try {
      await engine.ready;
    } catch (err) {
      await engine.close();
      throw err;
    }
    return engine;
  }

  /** Spawns the workers and returns at once: the server can listen and show the loading progress meanwhile. */
  static create(options: MlxEngineOptions): MlxEngine {
    if (!Number.isInteger(options.workers) || options.workers < 1) throw new Error('mlx: workers must be an integer >= 1');
    if (options.maxBatchPerWorker !== undefined && (!Number.isInteger(options.maxBatchPerWorker) || options.maxBatchPerWorker < 1)) {
      throw new Error('mlx: maxBatchPerWorker must be an integer >= 1');
    }
    if (options.hangTimeoutMs <= options.pingIntervalMs) throw new Error('mlx: hangTimeoutMs must exceed pingIntervalMs');
    const engine = new MlxEngine(options);
    for (let index = 0; index < options.workers; index++) {
      engine.slots.push({ index, worker: engine.spawn(index), failures: 0, restarts: 0, restartTimer: undefined });
    }
    return engine;
  }

  onCapacity(listener: () => void): void {
    this.capacityListeners.push(listener);
  }

  capacity(): number {
    let total = 0;
    for (const slot of this.slots) if (slot.worker.state === 'ready') total += slot.worker.maxBatch;
    return total;
  }

  models(): ModelInfo[] {
    return [{ id: this.options.model, ownedBy: 'mlx', testEngine: false, inputs: { audio: true, image: false }, maxAudioMs: MAX_AUDIO_MS }];
  }

  status(): MlxWorkerStatus[] {
    return this.slots.map((slot) => ({
      slot: slot.index,
      pid: slot.worker.pid,
      state: slot.worker.state,
      inFlight: slot.worker.inFlight.size,
      maxBatch: slot.worker.maxBatch,
      restarts: slot.restarts,
      loading: slot.worker.loading,
      probe: slot.worker.probe,
      peakMemoryBytes: slot.worker.peakMemoryBytes,
    }));
  }

  /** While no worker is ready: how far the furthest one got. */
  loading(): EngineLoading | undefined {
    if (this.capacity() > 0 || this.closing) return undefined;
    let best: EngineLoading = { stage: 'starting' };
    const rank = { starting: 0, download: 1, load: 2 };
    for (const slot of this.slots) {
      const progress = slot.worker.loading;
      if (progress && (rank[progress.stage] > rank[best.stage] || (progress.stage === best.stage && (progress.percent ?? 0) > (best.percent ?? 0)))) best = progress;
    }
    return best;
  }

  run(batch: TurnRequest[], emit: (turnId: string, event: TurnEvent) => void): Promise<void> {
    const byWorker = new Map<WorkerProcess, WireTurn[]>();
    const settled = batch.map(
      (request) =>
        new Promise<void>((settle) => {
          const fail = (error: EarshotError) => {
            emit(request.id, { type: 'error', error });
            settle();
          };
          if (this.closing) return fail(new EarshotError('shutting_down', 'the mlx engine is shutting down'));
          if (request.signal.aborted) {
            emit(request.id, { type: 'done', usage: { promptTokens: 0, completionTokens: 0 }, finish: 'cancelled' });
            return settle();
          }
          let wire: WireTurn;
          try {
            wire = wireTurn(request);
          } catch (err) {
            return fail(EarshotError.from(err));
          }
          const worker = this.pick(request.sessionId);
          if (worker === undefined) return fail(new EarshotError('engine_unavailable', 'no mlx worker is ready', { retryAfterMs: 1000 }));
          const turn: ActiveTurn = { request, emit, worker, deltas: 0, settle, onAbort: () => this.cancel(turn) };
          this.turns.set(request.id, turn);
          worker.inFlight.add(request.id);
          this.remember(request.sessionId, worker.slot);
          request.signal.addEventListener('abort', turn.onAbort, { once: true });
          const turns = byWorker.get(worker) ?? [];
          turns.push(wire);
          byWorker.set(worker, turns);
        }),
    );
    for (const [worker, turns] of byWorker) worker.send({ type: 'run', batchId: ++this.batchId, turns });
    return Promise.all(settled).then(() => undefined);
  }

  /** Stops accepting turns, lets in-flight ones finish until the drain deadline, then stops the workers. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const slot of this.slots) clearTimeout(slot.restartTimer);
    if (this.turns.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.options.drainTimeoutMs ?? 10_000);
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const grace = this.options.shutdownGraceMs ?? 2000;
    await Promise.all(this.slots.map((slot) => slot.worker.shutdown(grace)));
  }

  private spawn(index: number): WorkerProcess {
    const { python, model, maxBatchPerWorker, env, readyTimeoutMs, pingIntervalMs, hangTimeoutMs } = this.options;
    return new WorkerProcess(
      { slot: index, python, model, maxBatch: maxBatchPerWorker, env, readyTimeoutMs, pingIntervalMs, hangTimeoutMs, logger: this.log },
      {
        ready: () => {
          this.startup?.resolve();
          this.startup = undefined;
          for (const listener of this.capacityListeners) listener();
        },
        message: (worker, message) => this.onMessage(worker, message),
        exit: (worker, reason, loadError) => this.onExit(worker, reason, loadError),
      },
    );
  }

  private pick(sessionId: string): WorkerProcess | undefined {
    const preferred = this.affinity.get(sessionId);
    const warm = preferred === undefined ? undefined : this.slots[preferred]?.worker;
    if (warm?.state === 'ready' && warm.room > 0) return warm;
    let best: WorkerProcess | undefined;
    for (const slot of this.slots) {
      const worker = slot.worker;
      if (worker.state === 'ready' && (best === undefined || worker.room > best.room)) best = worker;
    }
    return best;
  }

  private remember(sessionId: string, slot: number): void {
    this.affinity.delete(sessionId);
    this.affinity.set(sessionId, slot);
    if (this.affinity.size > AFFINITY_LIMIT) this.affinity.delete(this.affinity.keys().next().value!);
  }

  private cancel(turn: ActiveTurn): void {
    turn.worker.send({ type: 'cancel', turnId: turn.request.id });
    this.finish(turn, { type: 'done', usage: { promptTokens: 0, completionTokens: turn.deltas }, finish: 'cancelled' });
  }

  /** Ends a turn towards the scheduler; the worker's slot stays taken until the worker confirms. */
  private finish(turn: ActiveTurn, event: TurnEvent): void {
    if (this.turns.get(turn.request.id) !== turn) return;
    this.turns.delete(turn.request.id);
    turn.request.signal.removeEventListener('abort', turn.onAbort);
    turn.emit(turn.request.id, event);
    turn.settle();
    if (this.turns.size === 0) this.drained?.();
  }

  private onMessage(worker: WorkerProcess, message: Exclude<WorkerMessage, { type: 'ready' | 'pong' | 'loading' }>): void {
    if (message.type === 'error' && message.turnId === undefined) {
      this.log.error({ slot: worker.slot, code: message.code }, message.message);
      return;
    }
    const turnId = message.turnId!;
    const turn = this.turns.get(turnId);
    const mine = turn !== undefined && turn.worker === worker;
    if (message.type === 'delta') {
      if (!mine) return;
      turn.deltas++;
      turn.emit(turnId, { type: 'delta', text: message.text });
      return;
    }
    worker.inFlight.delete(turnId);
    if (message.type === 'done') this.slots[worker.slot]!.failures = 0;
    if (!mine) return;
    if (message.type === 'done') this.finish(turn, { type: 'done', usage: message.usage, finish: message.finish });
    else this.finish(turn, { type: 'error', error: workerError(message.code, message.message) });
  }

  private onExit(worker: WorkerProcess, reason: string, loadError: { code: string; message: string } | undefined): void {
    const slot = this.slots[worker.slot];
    const lost = [...worker.inFlight];
    worker.inFlight.clear();
    for (const turnId of lost) {
      const turn = this.turns.get(turnId);
      if (turn === undefined || turn.worker !== worker) continue;
      const error = this.closing
        ? new EarshotError('shutting_down', 'the mlx engine is shutting down')
        : new EarshotError('engine_unavailable', `mlx worker ${worker.slot} failed: ${reason}`, { retryable: true, retryAfterMs: 500 });
      this.finish(turn, { type: 'error', error });
    }
    if (this.closing || slot === undefined || slot.worker !== worker) return;
    const startup = this.startup;
    if (startup !== undefined && worker.maxBatch === 0) {
      startup.failed.add(worker.slot);
      if (startup.failed.size === this.slots.length && this.capacity() === 0) {
        const why = loadError ? `${loadError.code}: ${loadError.message}` : reason;
        startup.reject(new EarshotError('engine_unavailable', `mlx: no worker could start (${why})`, { retryable: false }));
        return;
      }
    }
    const delay = Math.min((this.options.restartBackoffMs ?? 250) * 2 ** slot.failures, MAX_BACKOFF_MS);
    slot.failures++;
    this.log.warn({ slot: slot.index, delayMs: delay, reason }, 'restarting mlx worker');
    slot.restartTimer = setTimeout(() => {
      slot.restarts++;
      slot.worker = this.spawn(slot.index);
    }, delay);
  }
}
