/**
 * HTTP routing for every transport: a flat table of (method, path) → handler, matched
 * before anything is read. Front doors add their own routes (REST, static files).
 */
import { EarshotError } from '../../protocol/errors.js';
import type { ServerContext } from '../context.js';
import type { HttpHandler, HttpRequest, HttpResponse } from '../transport/types.js';
import { sendError, sendJson } from './respond.js';

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
      res.writeHead(204, { ...cors, 'access-control-allow-methods': 'GET, POST, OPTIONS', 'access-control-allow-headers': 'authorization, content-type', 'access-control-max-age': '600' });
      res.end();
      return;
    }
    const matching = routes.filter((r) => (r.prefix ? req.path.startsWith(r.path) : r.path === req.path));
    const route = matching.find((r) => r.method === req.method);
    if (!route) {
      if (matching.some((r) => !r.prefix)) return sendError(res, new EarshotError('bad_message', `method ${req.method} not allowed on ${req.path}`), cors);
      return sendError(res, new EarshotError('not_found', `no route for ${req.method} ${req.path}`), cors);
    }
    const corsResponse = withHeaders(res, cors);
    Promise.resolve()
      .then(() => route.handle(req, corsResponse))
      .catch((err: unknown) => {
        if (!(err instanceof EarshotError)) ctx.logger.error({ err, path: req.path }, 'http handler failed');
        if (!res.aborted) sendError(corsResponse, err);
      });
  };
}

function corsHeaders(ctx: ServerContext, req: HttpRequest): Record<string, string> {
  const origin = req.headers['origin'];
  const allowed = ctx.config.corsOrigins;
  if (!origin || allowed.length === 0) return {};
  if (allowed.includes('*')) return { 'access-control-allow-origin': '*' };
  return allowed.includes(origin) ? { 'access-control-allow-origin': origin, vary: 'origin' } : {};
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
  };
}

export { sendJson };
