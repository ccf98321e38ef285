/**
 * Starts a worker thread from a module beside the caller, whether the server runs from its
 * TypeScript sources (tsx) or from compiled JavaScript. Loader hooks are per thread: from
 * sources, the thread registers tsx before it loads its module.
 */
import { spawnSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** `name` is the module's file name without extension, resolved against `callerUrl` (the caller's import.meta.url). */
export function startThread(callerUrl: string, name: string, options: WorkerOptions = {}): Worker {
  const file = new URL(`./${name}${extname(fileURLToPath(callerUrl))}`, callerUrl);
  if (!file.pathname.endsWith('.ts')) return new Worker(file, options);
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(file.href)}); })`;
  return new Worker(boot, { ...options, eval: true });
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
