/**
 * HTTP routing for every transport: a flat table of (method, path) → handler, matched
 * before anything is read. Front doors add their own routes (REST, static files).
 */
import { EarshotError } from '../../protocol/errors.js';
import { logClientError } from '../observability/log.js';
import type { ServerContext } from '../context.js';
import type { HttpHandler, HttpRequest, HttpResponse } from '../transport/types.js';
import { sendError } from './respond.js';

export interface HttpRoute {
  method: 'GET' | 'POST' | 'DELETE';
  /** Exact path, or a prefix ending in '/' when `prefix` is set. */
  path: string;
  prefix?: boolean;
  handle(req: HttpRequest, res: HttpResponse): void | Promise<void>;
}

export function createHttpHandler(ctx: ServerContext, routes: HttpRoute[]): HttpHandler {
  return (req, res) => {
    const cors = corsHeaders(ctx, req);
    if (req.method === 'OPTIONS') {
      res.writeHead(204, preflightHeaders(req, cors));
      res.end();
      return;
    }
    const matching = routes.filter((r) => (r.prefix ? req.path.startsWith(r.path) : r.path === req.path));
    // The static files' catch-all prefix '/' makes no path known; any other match does, and then only its methods serve it.
    const known = matching.filter((r) => r.path !== '/');
    const route = (known.length > 0 ? known : matching).find((r) => r.method === req.method);
    if (!route) {
      const allowed = [...new Set(known.map((r) => r.method))];
      if (allowed.length > 0)
        return sendError(res, new EarshotError('method_not_allowed', `method ${req.method} not allowed on ${req.path}; use ${allowed.join(' or ')}`), { ...cors, allow: [...allowed, 'OPTIONS'].join(', ') });
      return sendError(res, new EarshotError('not_found', `no route for ${req.method} ${req.path}`), cors);
    }
    const corsResponse = withHeaders(res, cors);
    Promise.resolve()
      .then(() => route.handle(req, corsResponse))
      .catch((err: unknown) => {
        logClientError(ctx.logger, EarshotError.from(err), { door: 'rest', path: req.path });
        if (!res.aborted) sendError(corsResponse, err);
      });
  };
}

/**
 * CORS headers for a response to `req`: none unless its Origin is allowed. Browsers hide
 * response headers outside a short safelist from scripts, so the ones clients act on
 * (Retry-After on 429/503) are exposed. Exported for responses sent outside the router.
 */
export function corsHeaders(ctx: ServerContext, req: HttpRequest): Record<string, string> {
  const origin = req.headers['origin'];
  const allowed = ctx.config.corsOrigins;
  if (!origin || allowed.length === 0) return {};
  const expose = { 'access-control-expose-headers': 'retry-after' };
  if (allowed.includes('*')) return { 'access-control-allow-origin': '*', ...expose };
  return allowed.includes(origin) ? { 'access-control-allow-origin': origin, vary: 'origin', ...expose } : {};
}

/** A comma-separated list of header names, as Access-Control-Request-Headers carries. */
const HEADER_LIST = /^\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+(\s*,\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*\s*$/;

/**
 * An allowed origin may send whatever headers its preflight asks for: clients add their own
 * (the openai SDK sends X-Stainless-*), and the key check, not CORS, guards the API.
 */
function preflightHeaders(req: HttpRequest, cors: Record<string, string>): Record<string, string> {
  if (!cors['access-control-allow-origin']) return {};
  const requested = req.headers['access-control-request-headers'];
  return {
    ...cors,
    vary: 'origin, access-control-request-headers',
    'access-control-allow-methods': 'GET, POST, OPTIONS',
    ...(requested && HEADER_LIST.test(requested) ? { 'access-control-allow-headers': requested } : {}),
    'access-control-max-age': '600',
  };
}

function withHeaders(res: HttpResponse, extra: Record<string, string>): HttpResponse {
  if (Object.keys(extra).length === 0) return res;
  return {
    get aborted() {
      return res.aborted;
    },
    onAbort: (listener) => res.onAbort(listener),
    writeHead: (status, headers) => res.writeHead(status, { ...extra, ...headers }),
    write: (chunk) => res.write(chunk),
    end: (chunk) => res.end(chunk),
    get bufferedBytes() {
      return res.bufferedBytes;
    },
    close: () => res.close(),
  };
}

