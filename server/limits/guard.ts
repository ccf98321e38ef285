/**
 * The limits every websocket front door shares, applied around its route so no door can
 * forget them: Origin allow-list, connections in total and per address, per-key request
 * rate, idle timeout and maximum duration, and a 1001 close for every socket at shutdown.
 * REST gets the same request rate around the HTTP handler.
 */
import { EarshotError } from '../../protocol/errors.js';
import type { ServerContext } from '../context.js';
import { bearerKey, bearerToken } from '../auth/keys.js';
import { rejectUpgrade, sendError } from '../http/respond.js';
import { corsHeaders } from '../http/router.js';
import type { Connection, HttpHandler, SocketHandler, UpgradeRequest, WebSocketRoute } from '../transport/types.js';
import { ConnectionLimiter } from './connections.js';
import { LifetimeSweeper, type Expirable } from './lifetime.js';
import { originAllowed } from './origin.js';
import { RateLimiter, rateIdentity } from './rate.js';

export interface Guard {
  route(route: WebSocketRoute): WebSocketRoute;
  http(handler: HttpHandler): HttpHandler;
  /** Ends every websocket with `error` in its door's shape, then waits up to `waitMs` for them to close. */
  closeAll(error: EarshotError, waitMs: number): Promise<void>;
  stop(): void;
}

const NOTHING: SocketHandler = { message() {}, close() {} };

export function createGuard(ctx: ServerContext): Guard {
  const { config } = ctx;
  const connections = new ConnectionLimiter({
    maxConnections: config.maxConnections,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    retryAfterMs: config.busyRetryAfterMs,
  });
  const rate = new RateLimiter(config.requestsPerMinutePerKey);
  const sweeper = new LifetimeSweeper({ idleTimeoutMs: config.idleTimeoutMs, maxDurationMs: config.sessionMaxDurationMs });
  const timer = setInterval(() => {
    sweeper.sweep();
    rate.prune();
  }, sweeper.periodMs);
  timer.unref();

  const clientIp = (headers: Record<string, string>, remoteAddress: string): string => {
    if (!config.trustProxy) return remoteAddress;
    // The proxy appends the address it saw; entries to its left came from the client and may be forged.
    const forwarded = headers['x-forwarded-for']?.split(',').pop()?.trim();
    return forwarded || remoteAddress;
  };

  /** Without configured keys any string "authorizes", so it must not pick the bucket. */
  const identity = (key: string | undefined, ip: string) => rateIdentity(config.apiKeys.length > 0 && key !== undefined && ctx.authorize(key) ? key : undefined, ip);

  const refuse = (error: EarshotError) => {
    ctx.metrics.errors.inc({ code: error.code });
    return rejectUpgrade(error);
  };

  const open = (connection: Connection, ip: string, inner: (connection: Connection) => SocketHandler): SocketHandler => {
    const refused = connections.acquire(ip);
    if (refused) {
      connection.close(refused.closeCode, refused.message);
      return NOTHING;
    }
    const handler = inner(connection);
    let released = false;
    const tracked = sweeper.track((error) => {
      ctx.metrics.errors.inc({ code: error.code });
      (handler as Partial<Expirable>).expire?.(error);
      connection.close(error.closeCode, error.message.slice(0, 120));
    });
    return {
      message(data, isBinary) {
        tracked.active = true;
        handler.message(data, isBinary);
      },
      heard(frames) {
        tracked.active = true;
        handler.heard?.(frames);
      },
      close(code, reason) {
        if (!released) {
          released = true;
          tracked.stop();
          connections.release(ip);
        }
        handler.close(code, reason);
      },
    };
  };

  return {
    route(route) {
      return {
        path: route.path,
        upgrade(request: UpgradeRequest) {
          if (!originAllowed(request.headers, config.allowedOrigins, config.host))
            return refuse(new EarshotError('forbidden', `origin ${request.headers['origin']} may not open websockets on this server`));
          const ip = clientIp(request.headers, request.remoteAddress);
          const full = connections.refusal(ip);
          if (full) return refuse(full);
          const limited = rate.take(identity(bearerToken(request), ip));
          if (limited) return refuse(limited);
          const decision = route.upgrade(request);
          if (!decision.accept) return decision;
          return { ...decision, open: (connection) => open(connection, ip, decision.open) };
        },
      };
    },

    http(handler) {
      if (config.requestsPerMinutePerKey === 0) return handler;
      return (req, res) => {
        // The API is metered; health, metrics and the web page are not.
        if (req.path.startsWith('/v1/') && req.method !== 'OPTIONS') {
          const limited = rate.take(identity(bearerKey(req.headers), clientIp(req.headers, req.remoteAddress)));
          if (limited) {
            ctx.metrics.errors.inc({ code: limited.code });
            sendError(res, limited, corsHeaders(ctx, req));
            return;
          }
        }
        handler(req, res);
      };
    },

    async closeAll(error, waitMs) {
      sweeper.expireAll(error);
      const until = performance.now() + waitMs;
      while (connections.open > 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
    },

    stop() {
      clearInterval(timer);
    },
  };
}
