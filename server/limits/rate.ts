/**
 * Requests per minute per API key (or per client address without one): a token bucket
 * each, refilled continuously, so a client may burst up to its minute's allowance.
 * Full buckets carry no information and are dropped by `prune`, which bounds the map.
 */
import { createHash } from 'node:crypto';
import { EarshotError } from '../../protocol/errors.js';

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private readonly perMinute: number;
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;

  /** `perMinute` 0 = unlimited. */
  constructor(perMinute: number, now: () => number = () => performance.now()) {
    this.perMinute = perMinute;
    this.now = now;
  }

  get tracked(): number {
    return this.buckets.size;
  }

  /** Takes one request from `identity`'s allowance; an error with a retry hint when none is left. */
  take(identity: string): EarshotError | undefined {
    if (this.perMinute === 0) return undefined;
    const now = this.now();
    const bucket = this.buckets.get(identity) ?? { tokens: this.perMinute, at: now };
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + ((now - bucket.at) * this.perMinute) / 60_000);
    bucket.at = now;
    this.buckets.set(identity, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return undefined;
    }
    const retryAfterMs = Math.ceil(((1 - bucket.tokens) * 60_000) / this.perMinute);
    return new EarshotError('rate_limited', `rate limit of ${this.perMinute} requests per minute reached`, { retryAfterMs, retryable: true });
  }

  prune(): void {
    const now = this.now();
    for (const [identity, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.at) * this.perMinute) / 60_000 >= this.perMinute) this.buckets.delete(identity);
    }
  }
}

/** The bucket name for a request: a digest of its (valid) key, never the key itself, else its address. */
export function rateIdentity(validKey: string | undefined, ip: string): string {
  return validKey === undefined ? `ip:${ip}` : `key:${createHash('sha256').update(validKey).digest('base64url').slice(0, 22)}`;
}
