/**
 * Open websockets in total and per client address. Admission is checked at upgrade (so a
 * refusal is a plain HTTP answer) and counted at open (a handshake that never completes
 * cannot leak a slot); the small window between the two is closed by `acquire` refusing.
 */
import { EarshotError } from '../../protocol/errors.js';

export interface ConnectionLimits {
  maxConnections: number;
  maxConnectionsPerIp: number;
  retryAfterMs: number;
}

export class ConnectionLimiter {
  private total = 0;
  private readonly perIp = new Map<string, number>();
  private readonly limits: ConnectionLimits;

  constructor(limits: ConnectionLimits) {
    this.limits = limits;
  }

  get open(): number {
    return this.total;
  }

  /** Why a new connection from `ip` would be refused, or undefined when it fits. */
  refusal(ip: string): EarshotError | undefined {
    const { maxConnections, maxConnectionsPerIp, retryAfterMs } = this.limits;
    if (this.total >= maxConnections) return new EarshotError('overloaded', `server is at its limit of ${maxConnections} connections`, { retryAfterMs, retryable: true });
    if ((this.perIp.get(ip) ?? 0) >= maxConnectionsPerIp)
      return new EarshotError('rate_limited', `too many connections from your address (limit ${maxConnectionsPerIp})`, { retryAfterMs, retryable: true });
    return undefined;
  }

  acquire(ip: string): EarshotError | undefined {
    const refusal = this.refusal(ip);
    if (refusal) return refusal;
    this.total++;
    this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
    return undefined;
  }

  release(ip: string): void {
    const count = this.perIp.get(ip);
    if (count === undefined) return;
    this.total--;
    if (count <= 1) this.perIp.delete(ip);
    else this.perIp.set(ip, count - 1);
  }
}
