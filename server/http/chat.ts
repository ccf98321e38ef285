/**
 * POST /v1/chat/completions: OpenAI's REST shape on the shared pipeline. Each request becomes
 * one TurnRequest for the same scheduler the websocket sessions use, so REST and realtime
 * turns share batches. A client that goes away aborts the turn's signal.
 */
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { EarshotError } from '../../protocol/errors.js';
import type { Usage } from '../../protocol/native.js';
import { ChatCompletionRequest, describeIssue } from '../../protocol/openai.js';
import type { ServerContext } from '../context.js';
import type { TurnEvent, TurnRequest } from '../engines/types.js';
import type { TurnSink } from '../scheduler/scheduler.js';
import type { HttpRequest, HttpResponse } from '../transport/types.js';
import { spokenOutput, streamAudioSink, wholeAudioSink } from './chat-audio.js';
import { toMessages } from './chat-input.js';
import { errorOf, sendError, sendJson } from './respond.js';
import type { HttpRoute } from './router.js';
import { requestedModel, requireKey } from './service.js';
import { SseStream } from './sse.js';

export interface Reply {
  id: string;
  model: string;
  created: number;
  includeUsage: boolean;
}

export function chatRoutes(ctx: ServerContext): HttpRoute[] {
  return [
    { method: 'POST', path: '/v1/chat/completions', handle: (req, res) => chatCompletion(ctx, req, res) },
  ];
}

/** A JSON request body checked by its zod schema; failures name the field as OpenAI's `param` does. */
export function parseJsonBody<T extends z.ZodType>(body: Buffer, schema: T): z.infer<T> {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new EarshotError('bad_message', `request body is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return parsed.data;
  const { param, message } = describeIssue(parsed.error);
  throw new EarshotError('bad_message', param ? `${param}: ${message}` : message, param ? { param } : {});
}

async function chatCompletion(ctx: ServerContext, req: HttpRequest, res: HttpResponse): Promise<void> {
  const readyAt = performance.now();
  requireKey(ctx, req);
  if (ctx.draining()) throw new EarshotError('shutting_down', 'server is shutting down', { retryable: true });
  const controller = new AbortController();
  res.onAbort(() => controller.abort());
  const body = parseJsonBody(await req.body(ctx.config.maxBodyBytes), ChatCompletionRequest);
  const model = requestedModel(ctx, body.model);
  const messages = await toMessages(body.messages, model, ctx.config.restLongAudio, ctx.config.maxRequestAudioMs);
  if (controller.signal.aborted) return;
  const reply: Reply = { id: `chatcmpl-${randomUUID().replace(/-/g, '')}`, model: model.id, created: Math.floor(Date.now() / 1000), includeUsage: body.stream_options?.include_usage === true };
  const stop = typeof body.stop === 'string' ? [body.stop] : (body.stop ?? undefined);
  const turn: TurnRequest = {
    id: reply.id,
    // `user` lets the scheduler's per-session fairness treat one end user's requests as one session.
    sessionId: body.user ? `rest:${body.user}` : `rest:${reply.id}`,
    door: 'rest',
    messages,
    params: {
      maxTokens: body.max_completion_tokens ?? body.max_tokens ?? ctx.config.maxTokens,
      temperature: body.temperature ?? ctx.config.temperature,
      ...(body.top_p != null ? { topP: body.top_p } : {}),
      ...(stop ? { stop } : {}),
      ...(body.seed != null ? { seed: body.seed } : {}),
    },
    signal: controller.signal,
    readyAt,
  };
  const spoken = spokenOutput(ctx, body, controller.signal);
  const sink = spoken
    ? body.stream
      ? streamAudioSink(res, reply, spoken, ctx.config.maxBufferedBytes, ctx.logger)
      : wholeAudioSink(res, reply, spoken, ctx.logger)
    : body.stream
      ? streamSink(res, reply, ctx.config.maxBufferedBytes)
      : wholeSink(res, reply);
  ctx.scheduler.submit(turn, sink);
}

export function usageOf(usage: Usage) {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
    ...(usage.audioTokens !== undefined ? { prompt_tokens_details: { audio_tokens: usage.audioTokens } } : {}),
  };
}

/** A turn cancelled while its client is still connected was cut short by the server (shutdown). */
export const cutShort = () => new EarshotError('shutting_down', 'the turn was cancelled by the server before it finished', { retryable: true });

function wholeSink(res: HttpResponse, reply: Reply): TurnSink {
  let content = '';
  return (event: TurnEvent) => {
    if (res.aborted) return;
    if (event.type === 'delta') content += event.text;
    else if (event.type === 'error') sendError(res, event.error);
    else if (event.finish === 'cancelled') sendError(res, cutShort());
    else
      sendJson(res, 200, {
        id: reply.id,
        object: 'chat.completion',
        created: reply.created,
        model: reply.model,
        choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason: event.finish }],
        usage: usageOf(event.usage),
      });
  };
}

export function chunkOf(reply: Reply, delta: Record<string, unknown>, finish: 'stop' | 'length' | null) {
  return {
    id: reply.id,
    object: 'chat.completion.chunk',
    created: reply.created,
    model: reply.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    // OpenAI sends `usage: null` on every chunk when usage was asked for, and the figures on an extra last chunk.
    ...(reply.includeUsage ? { usage: null } : {}),
  };
}

/**
 * Headers wait for the turn's first event, so an error that comes before any text (queue
 * shutdown, engine failure) still gets its JSON body and status; later errors can only be
 * an SSE error event.
 */
function streamSink(res: HttpResponse, reply: Reply, maxBufferedBytes: number): TurnSink {
  const sse = new SseStream(res, maxBufferedBytes);
  const chunk = (delta: { role?: 'assistant'; content?: string }, finish: 'stop' | 'length' | null) => chunkOf(reply, delta, finish);
  return (event: TurnEvent) => {
    if (res.aborted) return;
    const failure = event.type === 'error' ? event.error : event.type === 'done' && event.finish === 'cancelled' ? cutShort() : undefined;
    if (failure && !sse.started) return sendError(res, failure);
    if (failure) return sse.fail(errorOf(failure));
    if (!sse.started) sse.send(chunk({ role: 'assistant', content: '' }, null));
    if (event.type === 'delta') return sse.send(chunk({ content: event.text }, null));
    if (event.type !== 'done' || event.finish === 'cancelled') return;
    sse.send(chunk({}, event.finish));
    if (reply.includeUsage) sse.send({ id: reply.id, object: 'chat.completion.chunk', created: reply.created, model: reply.model, choices: [], usage: usageOf(event.usage) });
    sse.done();
  };
}
