/** Starts bench/server-process.ts as a child process and talks to it over IPC. */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GcTotals, HeapSample } from './gc-probe.js';
import type { ChildReply, PipelineStats, ServerSpec, TransportStats } from './server-process.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const GC_PROBE = new URL('./gc-probe.ts', import.meta.url).href;

export interface ChildOptions {
  /** A checkout of another commit whose bench/server-process.ts (and so server) to run; this one by default. */
  root?: string;
}

export class ServerChild {
  readonly pid: number;
  readonly url: string;
  readonly transport: string;
  private readonly child: ChildProcess;

  private constructor(child: ChildProcess, url: string, transport: string) {
    this.child = child;
    this.pid = child.pid!;
    this.url = url;
    this.transport = transport;
  }

  static async start(spec: ServerSpec, options: ChildOptions = {}): Promise<ServerChild> {
    const script = join(options.root ?? ROOT, 'bench/server-process.ts');
    const child = fork(script, [JSON.stringify(spec)], { execArgv: ['--import', 'tsx', '--import', GC_PROBE], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const timer = setTimeout(() => child.kill(), 30_000);
    try {
      const [message] = (await Promise.race([once(child, 'message'), once(child, 'exit').then(() => [undefined])])) as [ChildReply | undefined];
      if (message?.type !== 'listening') throw new Error('bench server did not start');
      return new ServerChild(child, message.url, message.transport);
    } finally {
      clearTimeout(timer);
    }
  }

  /** CPU profile of the server's main thread (what `node --cpu-prof` records), for a window only. */
  async profileStart(): Promise<void> {
    await this.request({ cmd: 'profile-start' });
  }

  async profileStop(file: string): Promise<void> {
    await this.request({ cmd: 'profile-stop', file });
  }

  private async request<T = ChildReply>(message: object): Promise<T> {
    const reply = once(this.child, 'message');
    this.child.send(message);
    return ((await reply) as [T])[0];
  }

  /** Main-thread GC pauses since the last call (bench/gc-probe.ts). */
  async gc(): Promise<GcTotals> {
    return this.request<GcTotals>({ cmd: 'gc' });
  }

  /** Main-thread allocations over `ms` (bench/gc-probe.ts: V8's sampling heap profiler). */
  async heapSample(ms: number): Promise<HeapSample> {
    await this.request({ cmd: 'heap-start' });
    await new Promise((r) => setTimeout(r, ms));
    return this.request<HeapSample>({ cmd: 'heap-stop' });
  }

  async stats<T extends PipelineStats | TransportStats>(): Promise<T> {
    const message = await this.request({ cmd: 'stats' });
    if (message.type !== 'stats') throw new Error(`unexpected reply ${message.type}`);
    return message.stats as T;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.send({ cmd: 'stop' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
