/**
 * At most N syntheses at once for engines that run outside the process (say processes,
 * upstream requests); the rest wait in order. Bounded: past `maxWaiting` a new one is refused
 * with busy rather than queued without end. A waiter whose reply is cancelled leaves the line;
 * a reply's first piece goes ahead of later pieces, which have playback to hide behind.
 */
import { EarshotError } from '../../protocol/errors.js';

export class Slots {
  private free: number;
  private readonly waiting: { grant: () => void; first: boolean }[] = [];

  constructor(
    private readonly engine: string,
    size: number,
    private readonly maxWaiting: number,
  ) {
    this.free = size;
  }

  /** Resolves with a release function, or with undefined when `signal` aborts first. A reply's first piece waits ahead of later pieces. */
  async acquire(signal: AbortSignal, first = false): Promise<(() => void) | undefined> {
    if (signal.aborted) return undefined;
    if (this.free > 0) {
      this.free--;
      return this.releaser();
    }
    if (this.waiting.length >= this.maxWaiting)
      throw new EarshotError('busy', `voice stage (${this.engine}): ${this.waiting.length} sentences already wait for synthesis`, { retryAfterMs: 500 });
    return new Promise((resolve) => {
      const onAbort = () => {
        this.waiting.splice(this.waiting.indexOf(waiter), 1);
        resolve(undefined);
      };
      const waiter = {
        first,
        grant: () => {
          signal.removeEventListener('abort', onAbort);
          resolve(this.releaser());
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const at = first ? this.waiting.findIndex((w) => !w.first) : -1;
      if (at >= 0) this.waiting.splice(at, 0, waiter);
      else this.waiting.push(waiter);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next.grant();
      else this.free++;
    };
  }
}
