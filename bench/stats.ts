/** Small measuring tools shared by the scenarios: percentiles, process CPU, machine CPU. */
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** Samples gathered into a preallocated array, so recording in the hot loop allocates nothing. */
export class Samples {
  private values: Float64Array;
  private count = 0;

  constructor(capacity = 1 << 16) {
    this.values = new Float64Array(capacity);
  }

  add(value: number): void {
    if (this.count === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.count++] = value;
  }

  get size(): number {
    return this.count;
  }

  reset(): void {
    this.count = 0;
  }

  summary(): Percentiles {
    return percentiles(this.values.subarray(0, this.count));
  }
}

export interface Percentiles {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function percentiles(values: ArrayLike<number>): Percentiles {
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!);
  return { n: sorted.length, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: sorted.length ? sorted[sorted.length - 1]! : NaN };
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** The ids of `pid`'s child processes (e.g. a server's synthesis processes), from /proc. */
export function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // ppid is the second field after the parenthesised command name.
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) children.push(Number(entry));
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return children;
}

/** CPU seconds of a process and its children (a server and its synthesis processes), by pid. */
function treeCpuSeconds(pid: number): Map<number, number> {
  const seconds = new Map<number, number>();
  for (const p of [pid, ...childPids(pid)]) {
    try {
      seconds.set(p, processCpuSeconds(p));
    } catch {
      // Ended since the listing.
    }
  }
  return seconds;
}

/** CPU seconds used between two readings of treeCpuSeconds (a process born between them counts from 0). */
function cpuBetween(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0;
  for (const [pid, seconds] of after) sum += seconds - (before.get(pid) ?? 0);
  return sum;
}

/** Busy and total jiffies of the whole machine, from /proc/stat. */
export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = v[3]! + (v[4] ?? 0);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Measures the CPU of a server process (with its child processes), this process and the whole machine over a window. */
export class CpuWindow {
  private readonly pid: number;
  private serverStart = new Map<number, number>();
  private selfStart = process.cpuUsage();
  private machineStart = machineCpu();
  private wallStart = 0;

  constructor(serverPid: number) {
    this.pid = serverPid;
    this.restart();
  }

  restart(): void {
    this.serverStart = treeCpuSeconds(this.pid);
    this.selfStart = process.cpuUsage();
    this.machineStart = machineCpu();
    this.wallStart = performance.now();
  }

  /** Cores used (1.0 = one core busy the whole window). */
  read(): { seconds: number; server: number; generator: number; machine: number } {
    const seconds = (performance.now() - this.wallStart) / 1000;
    const self = process.cpuUsage(this.selfStart);
    const m = machineCpu();
    return {
      seconds,
      server: cpuBetween(this.serverStart, treeCpuSeconds(this.pid)) / seconds,
      generator: (self.user + self.system) / 1e6 / seconds,
      machine: ((m.busy - this.machineStart.busy) / (m.total - this.machineStart.total)) * availableParallelism(),
    };
  }
}

export const round = (x: number, digits = 2) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);

export const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** One thread's CPU and run-queue wait so far (/proc/<pid>/task/<tid>/schedstat: ns on CPU, ns runnable but waiting). */
interface ThreadTimes {
  nice: number;
  cpuNs: number;
  waitNs: number;
}

/** Every thread of `pid` (and of its child processes with `tree`), by thread id. */
function threadTimes(pid: number, tree: boolean): Map<number, ThreadTimes> {
  const times = new Map<number, ThreadTimes>();
  for (const p of tree ? [pid, ...childPids(pid)] : [pid]) addThreadTimes(p, times);
  return times;
}

function addThreadTimes(pid: number, times: Map<number, ThreadTimes>): void {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const [cpuNs, waitNs] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ').map(Number);
      // nice is field 19: the 17th after the command name.
      times.set(Number(tid), { nice: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]), cpuNs: cpuNs!, waitNs: waitNs! });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
}

/** Cores used and run-queue wait (seconds waited per second) of a process's threads over a window. */
export interface ThreadsSummary {
  /** The main thread (the event loop): CPU, and how long it was runnable but not running. */
  main: { cores: number; waiting: number };
  /** Threads at a lowered priority (nice > 0), child processes' included: the voice stage's synthesis and encoding. */
  background: { threads: number; cores: number };
  /** Every other thread (workers at normal priority, V8's and libuv's pools). */
  other: { threads: number; cores: number; waiting: number };
}

/**
 * Where a process's CPU (and its child processes') went, thread by thread, from Linux's schedstat: a main thread that
 * waits on the run queue is late for reasons outside its own code (a busy machine, the
 * scheduler), which no profile of that thread shows.
 */
export class ThreadWindow {
  private start = new Map<number, ThreadTimes>();
  private wallStart = 0;

  /** `tree`: its child processes' threads count too (a server's synthesis processes). */
  constructor(
    private readonly pid: number,
    private readonly tree = true,
  ) {
    this.restart();
  }

  restart(): void {
    this.start = threadTimes(this.pid, this.tree);
    this.wallStart = performance.now();
  }

  read(): ThreadsSummary {
    const seconds = (performance.now() - this.wallStart) / 1000;
    const summary: ThreadsSummary = { main: { cores: 0, waiting: 0 }, background: { threads: 0, cores: 0 }, other: { threads: 0, cores: 0, waiting: 0 } };
    for (const [tid, now] of threadTimes(this.pid, this.tree)) {
      const before = this.start.get(tid) ?? { nice: now.nice, cpuNs: 0, waitNs: 0 };
      const cores = (now.cpuNs - before.cpuNs) / 1e9 / seconds;
      const waiting = (now.waitNs - before.waitNs) / 1e9 / seconds;
      if (tid === this.pid) summary.main = { cores, waiting };
      else if (now.nice > 0) {
        summary.background.threads++;
        summary.background.cores += cores;
      } else {
        summary.other.threads++;
        summary.other.cores += cores;
        summary.other.waiting += waiting;
      }
    }
    return summary;
  }
}
