/**
 * The `openai` engine: each turn becomes one streamed Chat Completions request to an
 * OpenAI-compatible upstream that accepts `input_audio` (vLLM, llama-server, mlx_vlm.server).
 * Batching happens upstream; here a batch is just turns run side by side, up to `concurrency`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { EarshotError } from '../../../protocol/errors.js';
import type { Usage } from '../../../protocol/native.js';
import type { Logger } from '../../observability/log.js';
import { newestAudioOnly } from '../history.js';
import type { Engine, ModelInfo, TurnEvent, TurnRequest } from '../types.js';
import { connectionFailure, httpFailure, MAX_RETRY_AFTER_MS } from './failures.js';
import { requestBody } from './messages.js';
import { sseData } from './sse.js';

const BASE_BACKOFF_MS = 200;
const MAX_BACKOFF_MS = 3_000;

export interface OpenAIUpstreamOptions {
  /** Up to and including the version path, e.g. http://10.0.0.5:8000/v1. */
  baseURL: string;
  apiKey?: string;
  model: string;
  /** Requests in flight at once: the engine's capacity. */
  concurrency: number;
  /** Longest wait for the first byte, and between two chunks of a stream. */
  timeoutMs: number;
  /** Extra attempts after a retryable failure, only before the first token. */
  retries: number;
  /**
   * `newest` (default): only the newest message's audio goes as `input_audio`, earlier clips as the
   * text notes the mlx engine uses (mlx_vlm.server fails on a second clip; vLLM pays ~25 tokens per
   * second of old audio on every turn). `all`: every clip, for upstreams that handle several.
   */
  historyAudio?: 'newest' | 'all';
  logger: Logger;
}

const ChunkSchema = z.object({
  choices: z
    .array(z.object({ delta: z.object({ content: z.string().nullish() }).nullish(), finish_reason: z.string().nullish() }))
    .nullish(),
  usage: z
    .object({
      prompt_tokens: z.number(),
      completion_tokens: z.number(),
      prompt_tokens_details: z.object({ audio_tokens: z.number().nullish() }).nullish(),
    })
    .nullish(),
  // vLLM and others report a failure mid-stream as an event with an `error` member.
  error: z.union([z.string(), z.object({ message: z.string().optional() })]).nullish(),
});

type Outcome = { finish: 'stop' | 'length' | 'cancelled'; usage?: Usage };

/** The body's bytes; every network chunk restarts the idle timer. Leaving early cancels the body, freeing the connection. */
async function* chunksOf(body: ReadableStream<Uint8Array>, onChunk: () => void): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      onChunk();
      yield value;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

export class OpenAIUpstreamEngine implements Engine {
  readonly name = 'openai';
  private readonly options: OpenAIUpstreamOptions;
  private readonly url: string;
  /** Named in errors and logs: the host only, so a path or query with secrets never reaches clients. */
  private readonly upstream: string;
  private readonly headers: Record<string, string>;
  private readonly inFlight = new Set<AbortController>();
  private closed = false;

  constructor(options: OpenAIUpstreamOptions) {
    this.options = options;
    const base = new URL(options.baseURL);
    this.url = `${base.href.replace(/\/+$/, '')}/chat/completions`;
    this.upstream = `"${base.host}"`;
    this.headers = {
      'content-type': 'application/json',
      accept: 'text/event-stream',
      ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
    };
  }

  capacity(): number {
    return this.options.concurrency;
  }

  models(): ModelInfo[] {
    return [{ id: this.options.model, ownedBy: 'upstream', testEngine: false, inputs: { audio: true, image: false }, maxAudioMs: 30_000 }];
  }

  async run(batch: TurnRequest[], emit: (turnId: string, event: TurnEvent) => void): Promise<void> {
    await Promise.all(batch.map((turn) => this.runTurn(turn, (event) => emit(turn.id, event))));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const controller of this.inFlight) controller.abort();
  }

  private async runTurn(turn: TurnRequest, emit: (event: TurnEvent) => void): Promise<void> {
    const progress = { deltas: 0 };
    const log = this.options.logger.child({ turnId: turn.id, sessionId: turn.sessionId });
    // Without usage from the upstream, each content delta is counted as one token.
    const cancelled = () => emit({ type: 'done', usage: { promptTokens: 0, completionTokens: progress.deltas }, finish: 'cancelled' });
    let body: string;
    try {
      const messages = this.options.historyAudio === 'all' ? turn.messages : newestAudioOnly(turn.messages);
      body = requestBody(this.options.model, messages, turn.params);
    } catch (err) {
      emit({ type: 'error', error: EarshotError.from(err) });
      return;
    }
    for (let attempt = 0; ; attempt++) {
      if (turn.signal.aborted) return cancelled();
      if (this.closed) return emit({ type: 'error', error: new EarshotError('shutting_down', 'the server is shutting down') });
      try {
        const outcome = await this.attempt(turn, body, emit, progress);
        if (outcome.finish === 'cancelled') return cancelled();
        emit({ type: 'done', usage: outcome.usage ?? { promptTokens: 0, completionTokens: progress.deltas }, finish: outcome.finish });
        return;
      } catch (err) {
        if (turn.signal.aborted) return cancelled();
        const error = this.closed ? new EarshotError('shutting_down', 'the server is shutting down') : EarshotError.from(err);
        const delay = this.retryDelay(error, attempt, progress.deltas);
        if (delay === undefined) {
          log.warn({ code: error.code, err: error.message, attempt, deltas: progress.deltas }, 'upstream turn failed');
          emit({ type: 'error', error });
          return;
        }
        log.warn({ code: error.code, err: error.message, attempt, delayMs: Math.round(delay) }, 'upstream failed before the first token, retrying');
        await sleep(delay, undefined, { signal: turn.signal }).catch(() => undefined);
      }
    }
  }

  /** Milliseconds to wait before another attempt, or undefined to give up. */
  private retryDelay(error: EarshotError, attempt: number, deltas: number): number | undefined {
    // Once text reached the client a retry would repeat or contradict it.
    if (!error.retryable || deltas > 0 || attempt >= this.options.retries) return undefined;
    if (error.retryAfterMs !== undefined) return error.retryAfterMs <= MAX_RETRY_AFTER_MS ? error.retryAfterMs : undefined;
    return Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
  }

  /** One HTTP request, bounded by the turn's signal, the idle timeout and close(). */
  private async attempt(turn: TurnRequest, body: string, emit: (event: TurnEvent) => void, progress: { deltas: number }): Promise<Outcome> {
    const controller = new AbortController();
    const abort = () => controller.abort();
    turn.signal.addEventListener('abort', abort, { once: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.options.timeoutMs);
    this.inFlight.add(controller);
    try {
      return await this.exchange(turn, body, controller.signal, () => timer.refresh(), emit, progress);
    } catch (err) {
      if (timedOut) throw new EarshotError('timeout', `upstream ${this.upstream} sent nothing for ${this.options.timeoutMs} ms`);
      throw err;
    } finally {
      clearTimeout(timer);
      turn.signal.removeEventListener('abort', abort);
      this.inFlight.delete(controller);
    }
  }

  private async exchange(
    turn: TurnRequest,
    body: string,
    signal: AbortSignal,
    onChunk: () => void,
    emit: (event: TurnEvent) => void,
    progress: { deltas: number },
  ): Promise<Outcome> {
    let response: Response;
    try {
      response = await fetch(this.url, { method: 'POST', headers: this.headers, body, signal });
    } catch (err) {
      if (signal.aborted) throw err;
      throw connectionFailure(err, this.upstream, 'connect');
    }
    if (!response.ok) throw await httpFailure(response, this.upstream, this.options.model);
    if (!response.body) throw new EarshotError('engine_error', `upstream ${this.upstream} sent no body`);
    onChunk();
    let finish: 'stop' | 'length' | undefined;
    let usage: Usage | undefined;
    try {
      for await (const data of sseData(chunksOf(response.body, onChunk))) {
        if (data === '[DONE]') return { finish: finish ?? 'stop', usage };
        const chunk = this.parseChunk(data);
        for (const choice of chunk.choices ?? []) {
          const text = choice.delta?.content;
          if (text) {
            // Deltas already in this network chunk must not reach a turn that was just cancelled.
            if (turn.signal.aborted) return { finish: 'cancelled' };
            progress.deltas++;
            emit({ type: 'delta', text });
          }
          if (choice.finish_reason) finish = choice.finish_reason === 'length' ? 'length' : 'stop';
        }
        if (chunk.usage) {
          const audioTokens = chunk.usage.prompt_tokens_details?.audio_tokens;
          usage = {
            promptTokens: chunk.usage.prompt_tokens,
            completionTokens: chunk.usage.completion_tokens,
            ...(typeof audioTokens === 'number' ? { audioTokens } : {}),
          };
        }
      }
    } catch (err) {
      if (err instanceof EarshotError || signal.aborted) throw err;
      throw connectionFailure(err, this.upstream, 'stream');
    }
    // Some servers end without `[DONE]`; a finish reason still proves the answer is complete.
    if (finish) return { finish, usage };
    throw new EarshotError('engine_error', `upstream ${this.upstream} ended the stream before the answer finished`, { retryable: true });
  }

  private parseChunk(data: string): z.infer<typeof ChunkSchema> {
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      throw new EarshotError('engine_error', `upstream ${this.upstream} sent a malformed event: ${data.slice(0, 80)}`);
    }
    const parsed = ChunkSchema.safeParse(json);
    if (!parsed.success) throw new EarshotError('engine_error', `upstream ${this.upstream} sent an unexpected chunk: ${data.slice(0, 80)}`);
    const error = parsed.data.error;
    if (error) throw new EarshotError('engine_error', `upstream ${this.upstream} failed mid-stream: ${typeof error === 'string' ? error : (error.message ?? 'unknown error')}`);
    return parsed.data;
  }
}
