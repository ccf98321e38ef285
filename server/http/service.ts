/** Operational endpoints: /health, /metrics, /v1/models. */
import { EarshotError } from '../../protocol/errors.js';
import type { ServerContext } from '../context.js';
import type { ModelInfo } from '../engines/types.js';
import type { HttpRequest } from '../transport/types.js';
import { bearerKey } from '../auth/keys.js';
import { sendJson } from './respond.js';
import type { HttpRoute } from './router.js';

const CREATED = Math.floor(Date.now() / 1000);

function modelObject(model: ModelInfo) {
  return { id: model.id, object: 'model', created: CREATED, owned_by: model.ownedBy };
}

export function requireKey(ctx: ServerContext, req: HttpRequest): void {
  const key = bearerKey(req.headers);
  if (!ctx.authorize(key)) throw new EarshotError('unauthorized', key === undefined ? 'missing API key: send Authorization: Bearer <key>' : 'invalid API key');
}

/** The model a REST request names; without `model`, the served one (as vLLM and llama-server do). */
export function requestedModel(ctx: ServerContext, id: string | undefined): ModelInfo {
  if (id === undefined) return ctx.primaryModel();
  const model = ctx.engine.models().find((m) => m.id === id);
  if (!model) throw new EarshotError('not_found', `model '${id}' does not exist; GET /v1/models lists the served ones`, { param: 'model' });
  return model;
}

export function serviceRoutes(ctx: ServerContext): HttpRoute[] {
  return [
    {
      method: 'GET',
      path: '/health',
      handle: (_req, res) => {
        const model = ctx.primaryModel();
        const loading = ctx.engine.loading?.();
        const degraded = ctx.engine.degraded?.();
        sendJson(res, ctx.draining() || loading || degraded ? 503 : 200, {
          status: ctx.draining() ? 'draining' : loading ? 'loading' : degraded ? 'degraded' : 'ok',
          ...(loading ? { loading } : {}),
          ...(degraded ? { reason: degraded } : {}),
          transport: ctx.transportName(),
          engine: ctx.engine.name,
          tts: ctx.voice?.tts.name ?? 'none',
          model: model.id,
          testEngine: model.testEngine,
          queue: ctx.scheduler.queued,
          inFlight: ctx.scheduler.inFlight,
        });
      },
    },
    {
      method: 'GET',
      path: '/metrics',
      handle: async (_req, res) => {
        const body = await ctx.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': ctx.metrics.registry.contentType });
        res.end(body);
      },
    },
    {
      method: 'GET',
      path: '/v1/models',
      handle: (req, res) => {
        requireKey(ctx, req);
        sendJson(res, 200, { object: 'list', data: ctx.engine.models().map(modelObject) });
      },
    },
    {
      method: 'GET',
      path: '/v1/models/',
      prefix: true,
      handle: (req, res) => {
        requireKey(ctx, req);
        const id = decodeURIComponent(req.path.slice('/v1/models/'.length));
        const model = ctx.engine.models().find((m) => m.id === id);
        if (!model) throw new EarshotError('not_found', `model '${id}' does not exist`, { param: 'model' });
        sendJson(res, 200, modelObject(model));
      },
    },
  ];
}
