/**
 * One worker.py child: spawn, frames, readiness, liveness. Turn bookkeeping lives in the pool;
 * this class only tells it what the child said and when the child is gone.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { FrameDecoder, encodeFrame } from './framing.js';
import { WorkerMessage, type Loading, type PoolMessage, type Probe } from './messages.js';

const WORKER_SCRIPT = fileURLToPath(new URL('./worker.py', import.meta.url));

export interface WorkerProcessOptions {
  slot: number;
  python: string;
  model: string;
  maxBatch: number | undefined;
  env: Record<string, string> | undefined;
  /** A starting worker that reports no download or load progress for this long is killed. */
  readyTimeoutMs: number;
  pingIntervalMs: number;
  hangTimeoutMs: number;
  logger: Logger;
}

export interface WorkerEvents {
  ready(worker: WorkerProcess): void;
  message(worker: WorkerProcess, message: Exclude<WorkerMessage, { type: 'ready' | 'pong' | 'loading' }>): void;
  /** Called once; `loadError` is set when the worker said why it could not load the model. */
  exit(worker: WorkerProcess, reason: string, loadError: { code: string; message: string } | undefined): void;
}

export type WorkerState = 'starting' | 'ready' | 'dead';

export class WorkerProcess {
  state: WorkerState = 'starting';
  maxBatch = 0;
  /** Turns sent to this worker and not yet confirmed by its done/error: they hold a sequence slot. */
  readonly inFlight = new Set<string>();
  /** The latest download/load progress while starting. */
  loading: Loading | undefined;
  /** The worker's look at its own prompts, from `ready`. */
  probe: Probe | undefined;
  /** Peak MLX memory, from the latest pong (absent without MLX). */
  peakMemoryBytes: number | undefined;
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly decoder = new FrameDecoder();
  private readonly log: Logger;
  private lastHeard = performance.now();
  private readyTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private killReason: string | undefined;
  private loadError: { code: string; message: string } | undefined;

  constructor(
    private readonly options: WorkerProcessOptions,
    private readonly events: WorkerEvents,
  ) {
    this.child = spawn(options.python, [WORKER_SCRIPT], {
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.log = options.logger.child({ worker: options.slot, pid: this.child.pid });
    this.child.stdout.on('data', (chunk: Buffer) => this.onData(chunk));
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (text: string) => this.log.info({ stderr: text.trimEnd() }, 'mlx worker stderr'));
    // EPIPE after the child died: the exit handler reports it.
    this.child.stdin.on('error', () => {});
    this.child.on('error', (err) => this.onExit(`spawn failed: ${err.message}`));
    this.child.on('exit', (code, signal) => this.onExit(this.killReason ?? `exited with ${signal ?? `code ${code}`}`));
    this.readyTimer = setTimeout(() => this.kill(`not ready: no loading progress for ${options.readyTimeoutMs} ms`), options.readyTimeoutMs);
    this.send({ type: 'load', model: options.model, maxBatch: options.maxBatch });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get slot(): number {
    return this.options.slot;
  }

  /** Sequence slots left; negative while cancelled turns still wait for the worker's confirmation. */
  get room(): number {
    return this.maxBatch - this.inFlight.size;
  }

  send(message: PoolMessage): void {
    if (this.state === 'dead') return;
    this.child.stdin.write(encodeFrame(message));
  }

  kill(reason: string): void {
    if (this.state === 'dead' || this.killReason !== undefined) return;
    this.killReason = reason;
    this.log.warn({ reason }, 'killing mlx worker');
    this.child.kill('SIGKILL');
  }

  /** Resolves once the child is gone: asks it to stop, kills it after `graceMs`. */
  async shutdown(graceMs: number): Promise<void> {
    if (this.state === 'dead') return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.send({ type: 'shutdown' });
    this.child.stdin.end();
    const timer = setTimeout(() => this.kill(`still running ${graceMs} ms after shutdown`), graceMs);
    await exited;
    clearTimeout(timer);
  }

  private onData(chunk: Buffer): void {
    this.lastHeard = performance.now();
    let frames: unknown[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.kill(`bad frame from worker: ${(err as Error).message}`);
      return;
    }
    for (const frame of frames) {
      const parsed = WorkerMessage.safeParse(frame);
      if (!parsed.success) {
        this.kill(`invalid message from worker: ${parsed.error.issues[0]?.message ?? 'schema violation'}`);
        return;
      }
      this.onMessage(parsed.data);
    }
  }

  private onMessage(message: WorkerMessage): void {
    switch (message.type) {
      case 'ready':
        clearTimeout(this.readyTimer);
        this.state = 'ready';
        this.loading = undefined;
        this.maxBatch = message.capabilities.maxBatch;
        this.probe = message.capabilities.probe;
        if (!message.capabilities.audio) this.log.warn({ model: message.model }, 'this model does not accept audio');
        this.pingTimer = setInterval(() => this.checkAlive(), this.options.pingIntervalMs);
        this.log.info({ capabilities: message.capabilities }, 'mlx worker ready');
        this.events.ready(this);
        return;
      case 'loading':
        this.onLoading(message);
        return;
      case 'pong':
        this.peakMemoryBytes = message.peakMemoryBytes;
        return;
      case 'error':
        if (this.state === 'starting' && message.turnId === undefined) this.loadError = { code: message.code, message: message.message };
        this.events.message(this, message);
        return;
      default:
        this.events.message(this, message);
    }
  }

  /** A download that moves keeps the worker alive however long it takes; one that stalls does not. */
  private onLoading({ type: _, ...progress }: Loading & { type: 'loading' }): void {
    const before = this.loading;
    this.loading = progress;
    const moved = before === undefined || before.stage !== progress.stage || (progress.doneBytes ?? 0) > (before.doneBytes ?? 0) || (progress.doneFiles ?? 0) > (before.doneFiles ?? 0);
    if (!moved) return;
    this.readyTimer?.refresh();
    // A log line per stage and per 5 % of the download, not per report.
    const step = (p: Loading | undefined) => `${p?.stage}:${Math.floor((p?.percent ?? 0) / 5)}`;
    if (step(before) !== step(progress)) this.log.info({ model: this.options.model, ...progress }, progress.stage === 'download' ? 'downloading the model' : 'loading the model');
  }

  private checkAlive(): void {
    const silentMs = performance.now() - this.lastHeard;
    if (silentMs > this.options.hangTimeoutMs) this.kill(`no answer for ${Math.round(silentMs)} ms`);
    else this.send({ type: 'ping' });
  }

  private onExit(reason: string): void {
    if (this.state === 'dead') return;
    this.state = 'dead';
    clearTimeout(this.readyTimer);
    clearInterval(this.pingTimer);
    this.log.warn({ reason, loadError: this.loadError }, 'mlx worker gone');
    this.events.exit(this, reason, this.loadError);
  }
}
