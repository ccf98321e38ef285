/**
 * Idle timeout and maximum session duration for websockets, checked by one periodic
 * sweep instead of a timer per connection. A message only sets a flag (no clock read, no
 * allocation on the per-frame path); the sweep turns the flag into a timestamp.
 */
import { EarshotError } from '../../protocol/errors.js';

/** A front door that can render a limit error in its own protocol before the socket closes. */
export interface Expirable {
  expire(error: EarshotError): void;
}

export interface LifetimeLimits {
  /** 0 = never. */
  idleTimeoutMs: number;
  /** 0 = never. */
  maxDurationMs: number;
}

export interface Tracked {
  /** Set on every client message. */
  active: boolean;
  stop(): void;
}

interface Entry extends Tracked {
  openedAt: number;
  lastActive: number;
  expire: (error: EarshotError) => void;
}

export class LifetimeSweeper {
  private readonly limits: LifetimeLimits;
  private readonly entries = new Set<Entry>();
  private readonly now: () => number;

  constructor(limits: LifetimeLimits, now: () => number = () => performance.now()) {
    this.limits = limits;
    this.now = now;
  }

  get size(): number {
    return this.entries.size;
  }

  /** How often `sweep` should run for the limits to hold within about a quarter of the shortest. */
  get periodMs(): number {
    const set = [this.limits.idleTimeoutMs, this.limits.maxDurationMs].filter((ms) => ms > 0);
    return set.length === 0 ? 1000 : Math.max(25, Math.min(1000, Math.floor(Math.min(...set) / 4)));
  }

  track(expire: (error: EarshotError) => void): Tracked {
    const now = this.now();
    const entries = this.entries;
    const entry: Entry = {
      active: false,
      openedAt: now,
      lastActive: now,
      expire,
      stop: () => entries.delete(entry),
    };
    entries.add(entry);
    return entry;
  }

  sweep(): void {
    const now = this.now();
    const { idleTimeoutMs, maxDurationMs } = this.limits;
    for (const entry of this.entries) {
      if (entry.active) {
        entry.active = false;
        entry.lastActive = now;
      }
      let error: EarshotError | undefined;
      if (maxDurationMs > 0 && now - entry.openedAt >= maxDurationMs)
        error = new EarshotError('session_expired', `session reached its maximum duration of ${maxDurationMs} ms`, { fatal: true });
      else if (idleTimeoutMs > 0 && now - entry.lastActive >= idleTimeoutMs)
        error = new EarshotError('idle_timeout', `no message for ${idleTimeoutMs} ms`, { fatal: true });
      if (error) this.end(entry, error);
    }
  }

  /** Ends every tracked connection with `error` (shutdown). */
  expireAll(error: EarshotError): void {
    for (const entry of this.entries) this.end(entry, error);
  }

  private end(entry: Entry, error: EarshotError): void {
    this.entries.delete(entry);
    entry.expire(error);
  }
}
