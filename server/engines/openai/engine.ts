/**
 * The `openai` engine: each turn becomes one streamed Chat Completions request to an
 * OpenAI-compatible upstream that accepts `input_audio` (vLLM, llama-server, mlx_vlm.server).
 * Batching happens upstream; here a batch is just turns run side by side, up to `concurrency`.
 * Transcription turns go to the upstream's transcription endpoint when a transcription model
 * is configured, else to the chat model with a transcription prompt.
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
import { transcriptEvent, transcriptionForm, wholeTranscript, type Piece } from './transcription.js';
import { promptOf } from '../transcribe.js';

const BASE_BACKOFF_MS = 200;
const MAX_BACKOFF_MS = 3_000;

export interface OpenAIUpstreamOptions {
  /** Up to and including the version path, e.g. http://10.0.0.5:8000/v1. */
  baseURL: string;
  apiKey?: string;
  model: string;
  /** The upstream's speech-to-text model for transcription turns (`/audio/transcriptions`); absent: the chat model with a transcription prompt. */
  transcriptionModel?: string;
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
  /** While the upstream does not answer, how often to check it again (0: never check, not even at start). */
  probeIntervalMs?: number;
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

/** One kind of upstream call: where it goes, what it sends, how its answer reads. */
interface UpstreamRequest {
  url: string;
  headers: Record<string, string>;
  body: string | FormData;
  /** One streamed event's JSON; undefined when it has an unexpected shape. */
  parse: (json: unknown) => Piece | undefined;
  /** An answer that came whole instead of streamed (transcription servers that do not stream). */
  whole?: (json: unknown) => Piece | undefined;
}

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
  private readonly transcriptionUrl: string;
  /** Named in errors and logs: the host only, so a path or query with secrets never reaches clients. */
  private readonly upstream: string;
  private readonly headers: Record<string, string>;
  /** fetch sets a multipart body's content type itself, with its boundary. */
  private readonly formHeaders: Record<string, string>;
  private readonly inFlight = new Set<AbortController>();
  private closed = false;
  /** Why the upstream cannot be reached, while it cannot; /health reports it. */
  private unreachable: string | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private readonly modelsUrl: string;
  private readonly probeHeaders: Record<string, string>;

  constructor(options: OpenAIUpstreamOptions) {
    this.options = options;
    const base = new URL(options.baseURL);
    const root = base.href.replace(/\/+$/, '');
    this.url = `${root}/chat/completions`;
    this.transcriptionUrl = `${root}/audio/transcriptions`;
    this.upstream = `"${base.host}"`;
    const auth: Record<string, string> = options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {};
    this.headers = { 'content-type': 'application/json', accept: 'text/event-stream', ...auth };
    this.formHeaders = { accept: 'text/event-stream, application/json', ...auth };
    this.modelsUrl = `${root}/models`;
    this.probeHeaders = auth;
    // Checked at start: a warning now beats a first turn that fails seconds later.
    if (options.probeIntervalMs) void this.probe();
  }

  degraded(): string | undefined {
    return this.unreachable;
  }

  /** Any HTTP answer from GET /models means the upstream is there (some servers answer it 404). */
  private async probe(): Promise<void> {
    this.probeTimer = undefined;
    if (this.closed) return;
    try {
      const response = await fetch(this.modelsUrl, { headers: this.probeHeaders, signal: AbortSignal.timeout(Math.min(this.options.timeoutMs, 5_000)) });
      await response.body?.cancel();
      this.reachable();
    } catch (err) {
      this.cannotReach(connectionFailure(err, this.upstream, 'connect').message);
    }
  }

  private reachable(): void {
    if (this.unreachable === undefined) return;
    this.unreachable = undefined;
    clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    this.options.logger.info({ upstream: this.upstream }, 'upstream reachable again');
  }

  /** Warns once per outage, then checks again every probeIntervalMs until the upstream answers. */
  private cannotReach(reason: string): void {
    if (this.unreachable === undefined) this.options.logger.warn({ upstream: this.upstream, reason }, 'upstream unreachable: turns will fail until it answers');
    this.unreachable = reason;
    if (this.probeTimer || this.closed || !this.options.probeIntervalMs) return;
    this.probeTimer = setTimeout(() => void this.probe(), this.options.probeIntervalMs).unref();
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
    clearTimeout(this.probeTimer);
    for (const controller of this.inFlight) controller.abort();
  }

  private async runTurn(turn: TurnRequest, emit: (event: TurnEvent) => void): Promise<void> {
    const progress = { deltas: 0 };
    const log = this.options.logger.child({ turnId: turn.id, sessionId: turn.sessionId });
    // Without usage from the upstream, each content delta is counted as one token.
    const cancelled = () => emit({ type: 'done', usage: { promptTokens: 0, completionTokens: progress.deltas }, finish: 'cancelled' });
    let request: UpstreamRequest;
    try {
      request = this.requestFor(turn);
    } catch (err) {
      emit({ type: 'error', error: EarshotError.from(err) });
      return;
    }
    for (let attempt = 0; ; attempt++) {
      if (turn.signal.aborted) return cancelled();
      if (this.closed) return emit({ type: 'error', error: new EarshotError('shutting_down', 'the server is shutting down') });
      try {
        const outcome = await this.attempt(turn, request, emit, progress);
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

  /**
   * Replies, and transcriptions without a transcription model, are chat completions (a
   * transcription with its prompt); with one, transcriptions go to its endpoint.
   */
  private requestFor(turn: TurnRequest): UpstreamRequest {
    const { transcriptionModel } = this.options;
    if (turn.kind === 'transcribe' && transcriptionModel)
      return { url: this.transcriptionUrl, headers: this.formHeaders, body: transcriptionForm(transcriptionModel, turn), parse: transcriptEvent, whole: wholeTranscript };
    const prompt = promptOf(turn);
    const messages = this.options.historyAudio === 'all' ? prompt : newestAudioOnly(prompt);
    return { url: this.url, headers: this.headers, body: requestBody(this.options.model, messages, turn.params), parse: (json) => this.chatPiece(json) };
  }

  /** Milliseconds to wait before another attempt, or undefined to give up. */
  private retryDelay(error: EarshotError, attempt: number, deltas: number): number | undefined {
    // Once text reached the client a retry would repeat or contradict it.
    if (!error.retryable || deltas > 0 || attempt >= this.options.retries) return undefined;
    if (error.retryAfterMs !== undefined) return error.retryAfterMs <= MAX_RETRY_AFTER_MS ? error.retryAfterMs : undefined;
    return Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
  }

  /** One HTTP request, bounded by the turn's signal, the idle timeout and close(). */
  private async attempt(turn: TurnRequest, request: UpstreamRequest, emit: (event: TurnEvent) => void, progress: { deltas: number }): Promise<Outcome> {
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
      return await this.exchange(turn, request, controller.signal, () => timer.refresh(), emit, progress);
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
    request: UpstreamRequest,
    signal: AbortSignal,
    onChunk: () => void,
    emit: (event: TurnEvent) => void,
    progress: { deltas: number },
  ): Promise<Outcome> {
    let response: Response;
    try {
      response = await fetch(request.url, { method: 'POST', headers: request.headers, body: request.body, signal });
    } catch (err) {
      if (signal.aborted) throw err;
      const failure = connectionFailure(err, this.upstream, 'connect');
      this.cannotReach(failure.message);
      throw failure;
    }
    this.reachable();
    if (!response.ok) throw await httpFailure(response, this.upstream, this.options.model);
    if (!response.body) throw new EarshotError('engine_error', `upstream ${this.upstream} sent no body`);
    onChunk();
    let finish: 'stop' | 'length' | undefined;
    let usage: Usage | undefined;
    const take = (piece: Piece): boolean => {
      if (piece.final && progress.deltas === 0) piece.text = piece.final;
      if (piece.text) {
        // Deltas already in this network chunk must not reach a turn that was just cancelled.
        if (turn.signal.aborted) return false;
        progress.deltas++;
        emit({ type: 'delta', text: piece.text });
      }
      if (piece.finish) finish = piece.finish;
      if (piece.usage) usage = piece.usage;
      return true;
    };
    try {
      if (request.whole && !response.headers.get('content-type')?.includes('text/event-stream')) {
        const piece = request.whole(this.json(await response.text()));
        if (!piece) throw new EarshotError('engine_error', `upstream ${this.upstream} sent an unexpected transcription`);
        return take(piece) ? { finish: 'stop', usage } : { finish: 'cancelled' };
      }
      for await (const data of sseData(chunksOf(response.body, onChunk))) {
        if (data === '[DONE]') return { finish: finish ?? 'stop', usage };
        const piece = request.parse(this.json(data));
        if (!piece) throw new EarshotError('engine_error', `upstream ${this.upstream} sent an unexpected chunk: ${data.slice(0, 80)}`);
        if (!take(piece)) return { finish: 'cancelled' };
      }
    } catch (err) {
      if (err instanceof EarshotError || signal.aborted) throw err;
      throw connectionFailure(err, this.upstream, 'stream');
    }
    // Some servers end without `[DONE]`; a finish reason still proves the answer is complete.
    if (finish) return { finish, usage };
    throw new EarshotError('engine_error', `upstream ${this.upstream} ended the stream before the answer finished`, { retryable: true });
  }

  private json(data: string): unknown {
    try {
      return JSON.parse(data);
    } catch {
      throw new EarshotError('engine_error', `upstream ${this.upstream} sent a malformed event: ${data.slice(0, 80)}`);
    }
  }

  private chatPiece(json: unknown): Piece | undefined {
    const parsed = ChunkSchema.safeParse(json);
    if (!parsed.success) return undefined;
    const { choices, usage, error } = parsed.data;
    if (error) throw new EarshotError('engine_error', `upstream ${this.upstream} failed mid-stream: ${typeof error === 'string' ? error : (error.message ?? 'unknown error')}`);
    const piece: Piece = {};
    const text = (choices ?? []).map((choice) => choice.delta?.content ?? '').join('');
    if (text) piece.text = text;
    const reason = choices?.find((choice) => choice.finish_reason)?.finish_reason;
    if (reason) piece.finish = reason === 'length' ? 'length' : 'stop';
    if (usage) {
      const audioTokens = usage.prompt_tokens_details?.audio_tokens;
      piece.usage = { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens, ...(typeof audioTokens === 'number' ? { audioTokens } : {}) };
    }
    return piece;
  }
}
