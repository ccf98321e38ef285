/**
 * (a) capacity and (b) latency, on the full pipeline: a ramp of real-time Opus sessions
 * against the real server (echo test engine, replying at once so turns cost little), one
 * measuring window per step, stopping at the first step that misses the bar.
 */
import { cpus } from 'node:os';
import type { Config } from '../server/config.js';
import { ServerChild } from './child.js';
import { Fleet, type Voice } from './load.js';
import type { PipelineStats } from './server-process.js';
import { CpuWindow, percentiles, round, type Percentiles } from './stats.js';

export const LAG_P99_LIMIT_MS = 30;
/** Past this share of a core a server thread is saturated (the event loop, plus each audio thread). */
export const SERVER_CPU_LIMIT = 0.95;

export interface StepResult {
  sessions: number;
  held: boolean;
  why?: string;
  windowS: number;
  /** Cores used over the window. */
  cpu: { server: number; generator: number; machine: number };
  framesPerS: number;
  /** Frames the server handled per second of its own CPU. */
  framesPerServerCoreS: number;
  serverUsPerFrame: number;
  /** Main-thread GC pauses as a share of the server's CPU time over the window, and the full mark-compacts among them. */
  gc: { share: number; ms: number; major: number };
  /** Every PROBE_EVERY-th frame sent → its ping answered (dense); deciding frame sent → `vad silence` received (sparse). See load.ts. */
  frameLagMs: Percentiles;
  decisionLagMs: Percentiles;
  endToEndMs: Percentiles;
  turnStartMs: Percentiles;
  deliveryMs: Percentiles;
  turns: number;
  errors: number;
  dropped: number;
  /** With heapSampleMs: estimated bytes the server's main thread allocated per frame received, and where. */
  heap?: { bytesPerFrame: number; sites: [string, number][] };
}

export interface RampOptions {
  transport: 'uws' | 'ws';
  steps: number[];
  warmupMs: number;
  windowMs: number;
  /** Profiles the server during each step's measuring window (the figures then include the profiler's cost). */
  profileDir?: string;
  config?: Partial<Config>;
  /** Runs the server of another checkout (bench/frame-cost.ts: before and after). */
  root?: string;
  /** After each step's window, samples the server's allocations this long (a window of its own: the profiler costs CPU). */
  heapSampleMs?: number;
  log: (line: string) => void;
}

export interface RampResult {
  transport: string;
  held: number;
  steps: StepResult[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const pipelineConfig = (transport: 'uws' | 'ws') => ({
  transport,
  logLevel: 'warn' as const,
  echoTokenDelayMs: 0,
  // The echo engine is not what is measured: enough room that no turn is ever refused.
  echoCapacity: 4096,
  maxQueue: 4096,
  // Keeps memory flat over a long ramp; history does not touch the per-frame path.
  maxHistoryTurns: 2,
  idleTimeoutMs: 0,
  // Every load session comes from 127.0.0.1.
  maxConnections: 4096,
  maxConnectionsPerIp: 4096,
  // One listening thread unless a sweep asks for shards (the default is one per core).
  shards: 1,
});

export async function runRamp(voices: Voice[], options: RampOptions): Promise<RampResult> {
  // Another checkout may predate --shards (its config is strict): it runs one loop anyway.
  const { shards: _one, ...older } = pipelineConfig(options.transport);
  const base = options.root ? older : pipelineConfig(options.transport);
  const server = await ServerChild.start({ mode: 'pipeline', config: { ...base, ...options.config } }, options.root ? { root: options.root } : {});
  const fleet = new Fleet();
  const steps: StepResult[] = [];
  const shards = Number(options.config?.shards ?? 1);
  const threads = 1 + Number(options.config?.audioThreads ?? 0) + (shards > 1 ? shards : 0);
  const cpuLimit = SERVER_CPU_LIMIT * Math.min(cpus().length, threads);
  try {
    const cpu = new CpuWindow(server.pid);
    for (const target of options.steps) {
      await fleet.add(server.url, target - fleet.size, voices);
      await sleep(options.warmupMs);
      await server.stats();
      await server.gc();
      fleet.resetWindow();
      if (options.profileDir) await server.profileStart();
      cpu.restart();
      await sleep(options.windowMs);
      const used = cpu.read();
      const gc = await server.gc();
      if (options.profileDir) await server.profileStop(`${options.profileDir}${options.transport}-${target}.cpuprofile`);
      const framesPerS = fleet.framesSent / used.seconds;
      const serverStats = await server.stats<PipelineStats>();
      const delivery: number[] = [];
      for (const [turnId, emittedAt] of serverStats.firstDelta) {
        const receivedAt = fleet.firstDeltaAt.get(turnId);
        if (receivedAt !== undefined) delivery.push(receivedAt - emittedAt);
      }
      const frameLagMs = fleet.frameLag.summary();
      const decisionLagMs = fleet.decisionLag.summary();
      const step: StepResult = {
        sessions: target,
        held: true,
        windowS: round(used.seconds),
        cpu: { server: round(used.server), generator: round(used.generator), machine: round(used.machine) },
        framesPerS: Math.round(framesPerS),
        framesPerServerCoreS: Math.round(framesPerS / used.server),
        serverUsPerFrame: round((used.server * 1e6) / framesPerS, 1),
        gc: { share: round(gc.ms / (used.server * used.seconds * 1000), 4), ms: round(gc.ms, 1), major: gc.major },
        frameLagMs,
        decisionLagMs,
        endToEndMs: fleet.endToEnd.summary(),
        turnStartMs: percentiles(serverStats.turnStartMs),
        deliveryMs: percentiles(delivery),
        turns: fleet.turns,
        errors: fleet.errors,
        dropped: fleet.dropped,
      };
      const problems = [
        frameLagMs.n === 0 ? 'no pings answered' : '',
        decisionLagMs.n === 0 ? 'no VAD decisions seen' : '',
        frameLagMs.p99 > LAG_P99_LIMIT_MS ? `p99 frame lag ${round(frameLagMs.p99, 1)} ms > ${LAG_P99_LIMIT_MS}` : '',
        decisionLagMs.p99 > LAG_P99_LIMIT_MS ? `p99 decision lag ${round(decisionLagMs.p99, 1)} ms > ${LAG_P99_LIMIT_MS}` : '',
        used.server > cpuLimit ? `server CPU ${round(used.server)} cores` : '',
        fleet.dropped > 0 ? `${fleet.dropped} sessions dropped` : '',
        fleet.errors > 0 ? `${fleet.errors} errors` : '',
      ].filter(Boolean);
      if (options.heapSampleMs) {
        const sentBefore = fleet.framesSent;
        const heap = await server.heapSample(options.heapSampleMs);
        const frames = fleet.framesSent - sentBefore;
        step.heap = { bytesPerFrame: round(heap.bytes / frames, 1), sites: heap.sites.map(([site, bytes]) => [site, round(bytes / frames, 1)]) };
      }
      if (problems.length > 0) {
        step.held = false;
        step.why = problems.join('; ');
      }
      steps.push(step);
      options.log(
        `  ${options.transport} ${String(target).padStart(5)} sessions: frame lag p50/p99 ${round(frameLagMs.p50, 1)}/${round(frameLagMs.p99, 1)} ms (n=${frameLagMs.n}), ` +
          `decision lag ${round(decisionLagMs.p50, 1)}/${round(decisionLagMs.p99, 1)} ms (n=${decisionLagMs.n}), ` +
          `server ${step.cpu.server} cores (${step.serverUsPerFrame} µs/frame, GC ${round(step.gc.share * 100, 1)}%), generator ${step.cpu.generator}, machine ${step.cpu.machine}/2` +
          (step.held ? '' : `  ✗ ${step.why}`),
      );
      if (!step.held) break;
    }
  } finally {
    fleet.close();
    await server.stop();
  }
  const heldSteps = steps.filter((s) => s.held);
  return { transport: server.transport, held: heldSteps.length ? heldSteps[heldSteps.length - 1]!.sessions : 0, steps };
}
