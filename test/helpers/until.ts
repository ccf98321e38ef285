import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Waits until `done()` holds, polling, for at most `timeoutMs`; the caller asserts afterwards.
 * The bound is generous on purpose: a loaded machine may take seconds to close a socket, and
 * a bound that is too tight turns a slow machine into a failing test.
 */
export async function until(done: () => boolean | Promise<boolean>, timeoutMs = 20_000, stepMs = 20): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await done()) && performance.now() < deadline) await sleep(stepMs);
}
