/**
 * Starts a worker thread from a module beside the caller, whether the server runs from its
 * TypeScript sources (tsx) or from compiled JavaScript. Loader hooks are per thread: from
 * sources, the thread registers tsx before it loads its module.
 */
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

const moduleBeside = (callerUrl: string, name: string) => new URL(`./${name}${extname(fileURLToPath(callerUrl))}`, callerUrl);

/** `name` is the module's file name without extension, resolved against `callerUrl` (the caller's import.meta.url). */
export function startThread(callerUrl: string, name: string, options: WorkerOptions = {}): Worker {
  const file = moduleBeside(callerUrl, name);
  if (!file.pathname.endsWith('.ts')) return new Worker(file, options);
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(file.href)}); })`;
  return new Worker(boot, { ...options, eval: true });
}

/**
 * Starts a child process (Node, IPC with structured clone) from a module beside the caller, the
 * same way: from sources, it loads tsx first. It inherits none of this process's Node options.
 */
export function startProcess(callerUrl: string, name: string): ChildProcess {
  const file = moduleBeside(callerUrl, name);
  const execArgv = file.pathname.endsWith('.ts') ? ['--import', import.meta.resolve('tsx')] : [];
  return fork(fileURLToPath(file), [], { execArgv, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

/**
 * Asks a thread to end by posting `message` (it closes what it holds and exits on its own) and
 * resolves when it has; one that has not ended within `graceMs` is terminated.
 */
export function stopThread(worker: Worker, message: unknown, graceMs: number): Promise<void> {
  const ended = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  worker.postMessage(message);
  const late = setTimeout(() => void worker.terminate(), graceMs);
  return ended.finally(() => clearTimeout(late));
}

/** The nice value of threads whose work can wait: the lowest priority there is. */
export const BACKGROUND_NICE = 19;

/** Linux's SCHED_IDLE policy number (as /proc/<pid>/task/<tid>/stat shows it, field 41). */
export const SCHED_IDLE = 5;

/**
 * Lowers the calling thread's CPU priority so that, on a machine with no core to spare,
 * listening (decode, VAD, the event loop) runs first and the work here waits: a spoken reply
 * starting late is better than every session hearing late. Linux only (a thread's id comes
 * from /proc, and setpriority on a thread id applies to that thread alone); elsewhere the
 * thread keeps its priority.
 *
 * Nice 19 alone is not enough (bench/voice-lag.ts): the scheduler lets a nice-19 thread finish
 * its time slice before a woken event loop runs on that core, and counts its core as busy when
 * it places the woken thread, which then queues behind another busy thread. Under SCHED_IDLE
 * a waking normal thread takes the core at once and a core running only idle threads counts
 * as free. Node has no call for it; util-linux's `chrt` (on every Debian-like system) sets it,
 * and without it the thread stays at nice 19.
 */
export function runInBackground(): void {
  let threadId: number;
  try {
    threadId = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(threadId)) return;
    setPriority(threadId, BACKGROUND_NICE);
  } catch {
    // No /proc (macOS): the OS schedules the thread as any other.
    return;
  }
  spawnSync('chrt', ['--idle', '-p', '0', String(threadId)], { stdio: 'ignore', timeout: 5000 });
}

/**
 * The same for every thread of the calling process, for a child process whose work can wait:
 * its V8 helper threads (garbage collection, compilation) included, which a worker thread
 * shares with the event loop at normal priority. Threads started later inherit the priority of
 * the thread that starts them. Where there is no /proc (macOS), the whole process is lowered.
 */
export function runProcessInBackground(): void {
  let threads: string[];
  try {
    threads = readdirSync('/proc/self/task');
  } catch {
    try {
      setPriority(0, BACKGROUND_NICE);
    } catch {
      // Not allowed here: the process keeps its priority.
    }
    return;
  }
  for (const tid of threads) {
    try {
      setPriority(Number(tid), BACKGROUND_NICE);
    } catch {
      // The thread ended since the listing.
    }
  }
  spawnSync('chrt', ['--all-tasks', '--idle', '-p', '0', String(process.pid)], { stdio: 'ignore', timeout: 5000 });
}
