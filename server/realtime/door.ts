/**
 * The OpenAI Realtime front door, /v1/realtime: JSON events ↔ Session calls. Audio in, text
 * out. GA event names by default; a beta client (OpenAI-Beta: realtime=v1 or the
 * openai-beta.realtime-v1 subprotocol) gets the beta names and session shape.
 *
 * Turns are driven from here (Session.autoRespond is off): an utterance becomes a committed
 * user item, and a response starts when turn detection's create_response says so or the
 * client sends response.create. Bad input yields an `error` event; the connection stays open.
 */
import { randomUUID } from 'node:crypto';
import { EarshotError, type ErrorCode, type ErrorOptions } from '../../protocol/errors.js';
import type { Usage } from '../../protocol/native.js';
import {
  parseClientEvent,
  type ClientEvent,
  type ClientEventType,
  type ContentPart,
  type ItemContent,
  type ResponseConfig,
  type ServerEventBody,
  type WireItem,
  type WireResponse,
  type WireUsage,
} from '../../protocol/realtime.js';
import type { Part, Pcm16k } from '../engines/types.js';
import type { ServerContext } from '../context.js';
import type { Connection, SocketHandler, UpgradeDecision, UpgradeRequest, WebSocketRoute } from '../transport/types.js';
import { loadFvad, WebRtcVad, type FvadModule } from '../vad/fvad.js';
import { VadSegmenter } from '../vad/segmenter.js';
import { decodeClip, formatDecoder, sameFormat } from './audio.js';
import { applyUpdate, defaultSettings, renderSession, vadAggressiveness, type RealtimeSettings } from './config.js';
import { Session, type HistoryItem, type SessionEvents, type TurnResult } from '../session/session.js';
import { bearerToken, rejectUpgrade } from '../session/upgrade.js';

const BETA_PROTOCOL = 'openai-beta.realtime-v1';

/** An EarshotError with the OpenAI error code a Realtime client expects for this case. */
class RealtimeError extends EarshotError {
  readonly wireCode: string;
  constructor(code: ErrorCode, wireCode: string, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.wireCode = wireCode;
  }
}

interface ActiveResponse {
  id: string;
  itemId: string;
  turnId: string;
  /** The item the reply follows in the conversation. */
  previousItemId: string | null;
  maxOutputTokens: number | 'inf';
  cancelReason?: 'turn_detected' | 'client_cancelled';
}

type Handlers = { [T in ClientEventType]: (event: Extract<ClientEvent, { type: T }>) => void };

class RealtimeConnection implements SocketHandler {
  private readonly ctx: ServerContext;
  private readonly connection: Connection;
  private readonly fvad: FvadModule;
  private readonly beta: boolean;
  private readonly idPrefix = randomUUID().replace(/-/g, '').slice(0, 10);
  private counter = 0;
  private readonly sessionId = `sess_${this.idPrefix}`;
  private readonly session: Session;
  private settings: RealtimeSettings;
  private readonly text = new TextDecoder('utf-8', { fatal: true });
  /** Stream time (ms) at which the current segmenter started: its timestamps are relative to it. */
  private segmenterOffsetMs = 0;
  /** Segmenter time at which the last utterance ended: the next prefix padding cannot reach before it. */
  private lastStopMs = 0;
  /** The user item announced by speech_started, added when the utterance ends. */
  private speechItemId: string | undefined;
  private active: ActiveResponse | undefined;
  /** An utterance was committed while a response ran: respond again when it ends. */
  private responsePending = false;
  private closed = false;
  private readonly handlers: Handlers;

  constructor(ctx: ServerContext, connection: Connection, fvad: FvadModule, beta: boolean) {
    this.ctx = ctx;
    this.connection = connection;
    this.fvad = fvad;
    this.beta = beta;
    this.settings = defaultSettings(ctx.config);
    const defaults = ctx.sessionDefaults();
    this.session = new Session(
      this.sessionId,
      { scheduler: ctx.scheduler, metrics: ctx.metrics, logger: ctx.logger },
      { ...defaults, params: { ...defaults.params }, autoRespond: false, coalesce: false },
      this.events(),
    );
    this.applySettings(this.settings, true);
    ctx.metrics.connections.inc();
    ctx.metrics.sessions.inc({ door: 'realtime' });
    this.handlers = {
      'session.update': (e) => this.update(e),
      'input_audio_buffer.append': (e) => this.session.pushAudio(Buffer.from(e.audio, 'base64')),
      'input_audio_buffer.commit': () => this.commit(),
      'input_audio_buffer.clear': () => this.clear(),
      'conversation.item.create': (e) => this.createItem(e),
      'conversation.item.delete': (e) => this.deleteItem(e.item_id),
      'conversation.item.retrieve': (e) => this.send({ type: 'conversation.item.retrieved', item: this.wireItem(this.findItem(e.item_id)) }),
      'conversation.item.truncate': (e) => this.truncate(e),
      'response.create': (e) => this.respond(e.response ?? {}, e.event_id),
      'response.cancel': (e) => this.cancel(e.response_id),
    };
    this.send({ type: 'session.created', session: this.renderSession() });
  }

  message(data: Uint8Array, isBinary: boolean): void {
    let eventId: string | undefined;
    try {
      const limit = this.ctx.config.maxMessageBytes;
      if (data.length > limit) throw new EarshotError('too_large', `message of ${data.length} bytes exceeds the ${limit} byte limit`);
      if (isBinary) throw new EarshotError('bad_message', 'Realtime events are JSON text frames, not binary');
      const parsed = parseClientEvent(this.decodeText(data));
      if (!parsed.ok) {
        eventId = parsed.eventId;
        throw new RealtimeError('bad_message', parsed.code, parsed.message, parsed.param === undefined ? {} : { param: parsed.param });
      }
      eventId = parsed.event.event_id;
      (this.handlers[parsed.event.type] as (e: ClientEvent) => void)(parsed.event);
    } catch (err) {
      this.sendError(err, eventId);
    }
  }

  /** A limit (idle, duration, shutdown) ended the session: say so before the guard closes the socket. */
  expire(error: EarshotError): void {
    this.sendError(error, undefined);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ctx.metrics.connections.dec();
    this.ctx.metrics.sessions.dec({ door: 'realtime' });
    this.session.close();
  }

  private decodeText(data: Uint8Array): string {
    try {
      return this.text.decode(data);
    } catch {
      throw new RealtimeError('bad_message', 'invalid_json', 'the message is not valid UTF-8 text');
    }
  }

  private newId(kind: string): string {
    return `${kind}_${this.idPrefix}${(++this.counter).toString(36)}`;
  }

  private send(body: ServerEventBody): void {
    if (this.closed) return;
    this.connection.send(JSON.stringify({ event_id: this.newId('event'), ...body }));
  }

  private sendError(err: unknown, clientEventId: string | undefined): void {
    const error = EarshotError.from(err);
    if (error.code === 'internal') this.ctx.logger.error({ err, session: this.sessionId }, 'realtime session error');
    this.ctx.metrics.errors.inc({ code: error.code });
    this.send({
      type: 'error',
      error: {
        type: error.openaiType,
        code: error instanceof RealtimeError ? error.wireCode : error.code,
        message: error.message,
        param: error.param ?? null,
        event_id: clientEventId ?? null,
      },
    });
  }

  private renderSession(): Record<string, unknown> {
    return renderSession(this.settings, { id: this.sessionId, model: this.ctx.primaryModel().id }, this.beta);
  }

  /* session.update */

  private update(event: Extract<ClientEvent, { type: 'session.update' }>): void {
    const { settings, warnings } = applyUpdate(this.settings, event.session, this.ctx.config);
    for (const warning of warnings) this.sendError(warning, event.event_id);
    this.applySettings(settings, false);
    this.send({ type: 'session.updated', session: this.renderSession() });
  }

  private applySettings(next: RealtimeSettings, initial: boolean): void {
    const previous = this.settings;
    this.settings = next;
    const s = this.session.settings;
    if (next.instructions) s.system = next.instructions;
    else delete s.system;
    s.params.maxTokens = this.maxTokens(next.maxOutputTokens);
    s.params.temperature = next.temperature;
    s.bargeIn = next.vad?.interruptResponse ?? false;
    const vadChanged = JSON.stringify(previous.vad) !== JSON.stringify(next.vad);
    if (initial || vadChanged || !sameFormat(previous.format, next.format)) this.rebuildAudioInput();
  }

  private maxTokens(limit: number | 'inf'): number {
    return limit === 'inf' ? this.ctx.config.maxTokens : limit;
  }

  /** A fresh decoder and segmenter: on a format or turn detection change, and to drop buffered speech. */
  private rebuildAudioInput(): void {
    const { vad, format } = this.settings;
    const { config } = this.ctx;
    const segmenter = vad
      ? new VadSegmenter(new WebRtcVad(this.fvad, vadAggressiveness(vad.threshold)), {
          prefixPaddingMs: vad.prefixPaddingMs,
          silenceMs: vad.silenceMs,
          minSpeechMs: config.vadMinSpeechMs,
          maxUtteranceMs: config.maxUtteranceMs,
        })
      : undefined;
    this.session.setAudioInput(formatDecoder(format), segmenter);
    this.session.clearAudio();
    this.segmenterOffsetMs = Math.round(this.session.streamMs);
    this.lastStopMs = 0;
    this.speechItemId = undefined;
  }

  /* input_audio_buffer */

  private commit(): void {
    if (!this.session.commit())
      throw new RealtimeError('protocol_order', 'input_audio_buffer_commit_empty', 'the input audio buffer is empty: nothing to commit');
  }

  private clear(): void {
    this.rebuildAudioInput();
    this.send({ type: 'input_audio_buffer.cleared' });
  }

  /* conversation items */

  private findItem(id: string): HistoryItem {
    const item = this.session.history.find((i) => i.id === id);
    if (!item) throw new RealtimeError('bad_message', 'item_not_found', `no item with id '${id}'`, { param: 'item_id' });
    return item;
  }

  private lastItemId(): string | null {
    return this.session.history.at(-1)?.id ?? null;
  }

  private createItem(event: Extract<ClientEvent, { type: 'conversation.item.create' }>): void {
    const { item } = event;
    const previous = this.lastItemId();
    if (event.previous_item_id != null && event.previous_item_id !== previous)
      throw new EarshotError('unsupported', 'items can only be appended: previous_item_id must be the last item', { param: 'previous_item_id' });
    if (item.id !== undefined && this.session.history.some((i) => i.id === item.id))
      throw new EarshotError('bad_message', `an item with id '${item.id}' already exists`, { param: 'item.id' });
    const parts = item.content.map((c) => this.toPart(c));
    const added = this.session.addItem(item.role, parts, item.id ?? this.newId('item'));
    this.announceItem(added, previous);
  }

  private toPart(content: ContentPart): Part {
    if (content.type === 'input_audio') return { type: 'audio', samples: decodeClip(this.settings.format, Buffer.from(content.audio, 'base64')) };
    return { type: 'text', text: content.text };
  }

  private announceItem(item: HistoryItem, previous: string | null): void {
    const wire = this.wireItem(item);
    if (this.beta) {
      this.send({ type: 'conversation.item.created', item: wire, previous_item_id: previous });
      return;
    }
    this.send({ type: 'conversation.item.added', item: wire, previous_item_id: previous });
    this.send({ type: 'conversation.item.done', item: wire, previous_item_id: previous });
  }

  private deleteItem(id: string): void {
    this.findItem(id);
    this.session.deleteItem(id);
    this.send({ type: 'conversation.item.deleted', item_id: id });
  }

  /** Cuts an item's audio at audio_end_ms (Earshot has no audio output to truncate, so this applies to input audio). */
  private truncate(event: Extract<ClientEvent, { type: 'conversation.item.truncate' }>): void {
    const item = this.findItem(event.item_id);
    const part = item.parts[event.content_index];
    if (part?.type !== 'audio') throw new EarshotError('bad_message', 'only audio content can be truncated', { param: 'content_index' });
    const samples = Math.round((event.audio_end_ms * 16_000) / 1000);
    if (samples > part.samples.length)
      throw new EarshotError('bad_message', `audio_end_ms ${event.audio_end_ms} is past the end of the audio`, { param: 'audio_end_ms' });
    item.parts[event.content_index] = { type: 'audio', samples: part.samples.slice(0, samples) };
    this.send({ type: 'conversation.item.truncated', item_id: item.id, content_index: event.content_index, audio_end_ms: event.audio_end_ms });
  }

  private wireItem(item: HistoryItem): WireItem {
    return {
      id: item.id,
      object: 'realtime.item',
      type: 'message',
      status: item.interrupted ? 'incomplete' : 'completed',
      role: item.role,
      content: item.parts.flatMap((part): ItemContent[] => {
        if (part.type === 'audio') return [{ type: 'input_audio', transcript: null }];
        if (part.type !== 'text') return [];
        if (item.role !== 'assistant') return [{ type: 'input_text', text: part.text }];
        return [{ type: this.beta ? 'text' : 'output_text', text: part.text }];
      }),
    };
  }

  /** An utterance ended (VAD or commit): it becomes the user item speech_started announced. */
  private onUtterance(audio: Pcm16k): void {
    const itemId = this.speechItemId ?? this.newId('item');
    this.speechItemId = undefined;
    const previous = this.lastItemId();
    const item = this.session.addItem('user', [{ type: 'audio', samples: audio }], itemId);
    this.send({ type: 'input_audio_buffer.committed', item_id: item.id, previous_item_id: previous });
    this.announceItem(item, previous);
    if (!this.settings.vad?.createResponse) return;
    if (this.active) this.responsePending = true;
    else this.respond({});
  }

  /* responses */

  /** A response on the conversation so far; `clientEventId` is unset for the ones turn detection creates. */
  private respond(config: ResponseConfig, clientEventId?: string): void {
    if (this.active)
      throw new RealtimeError('protocol_order', 'conversation_already_has_active_response', `response ${this.active.id} is still in progress`);
    const modalities = config.output_modalities ?? config.modalities;
    if (modalities?.includes('audio'))
      this.sendError(new EarshotError('unsupported', 'Earshot produces text only: this response will be text', { param: 'response.output_modalities' }), clientEventId);
    const maxOutputTokens = config.max_output_tokens ?? config.max_response_output_tokens ?? this.settings.maxOutputTokens;
    const active: ActiveResponse = { id: this.newId('resp'), itemId: this.newId('item'), turnId: '', previousItemId: this.lastItemId(), maxOutputTokens };
    this.active = active;
    this.responsePending = false;
    this.ctx.logger.debug({ session: this.sessionId, response: active.id }, 'realtime response');
    try {
      this.session.respond({
        maxTokens: this.maxTokens(maxOutputTokens),
        ...(config.temperature !== undefined ? { temperature: config.temperature } : {}),
        ...(config.instructions !== undefined ? { instructions: config.instructions } : {}),
        replyItemId: active.itemId,
      });
    } catch (err) {
      if (this.active === active) this.active = undefined;
      throw err;
    }
  }

  private cancel(responseId: string | undefined): void {
    const active = this.active;
    if (!active) throw new RealtimeError('protocol_order', 'response_cancel_not_active', 'there is no response in progress to cancel');
    if (responseId !== undefined && responseId !== active.id)
      throw new RealtimeError('protocol_order', 'response_cancel_not_active', `response '${responseId}' is not in progress`, { param: 'response_id' });
    active.cancelReason = 'client_cancelled';
    this.session.cancel();
  }

  private wireResponse(active: ActiveResponse, status: WireResponse['status'], output: WireItem[], details: WireResponse['status_details'], usage: WireUsage | null): WireResponse {
    return {
      id: active.id,
      object: 'realtime.response',
      status,
      status_details: details,
      output,
      conversation_id: `conv_${this.idPrefix}`,
      output_modalities: ['text'],
      ...(this.beta ? { modalities: ['text'] as ['text'] } : {}),
      max_output_tokens: active.maxOutputTokens,
      usage,
      metadata: null,
    };
  }

  private replyItem(active: ActiveResponse, text: string | undefined, status: WireItem['status']): WireItem {
    return {
      id: active.itemId,
      object: 'realtime.item',
      type: 'message',
      status,
      role: 'assistant',
      content: text === undefined ? [] : [{ type: this.beta ? 'text' : 'output_text', text }],
    };
  }

  private partRef(active: ActiveResponse) {
    return { response_id: active.id, item_id: active.itemId, output_index: 0, content_index: 0 };
  }

  private responseStarted(turnId: string): void {
    const active = this.active!;
    active.turnId = turnId;
    this.send({ type: 'response.created', response: this.wireResponse(active, 'in_progress', [], null, null) });
    const item = this.replyItem(active, undefined, 'in_progress');
    this.send({ type: 'response.output_item.added', response_id: active.id, output_index: 0, item });
    const previous = active.previousItemId;
    if (this.beta) this.send({ type: 'conversation.item.created', item, previous_item_id: previous });
    else this.send({ type: 'conversation.item.added', item, previous_item_id: previous });
    this.send({ type: 'response.content_part.added', ...this.partRef(active), part: { type: 'text', text: '' } });
  }

  private responseDelta(turnId: string, delta: string): void {
    const active = this.active;
    if (active?.turnId !== turnId) return;
    this.send({ type: this.beta ? 'response.text.delta' : 'response.output_text.delta', ...this.partRef(active), delta });
  }

  private responseEnded(turnId: string, result: TurnResult): void {
    const active = this.active;
    if (active?.turnId !== turnId) return;
    this.active = undefined;
    const { status, details } = outcome(result, active.cancelReason);
    const ref = this.partRef(active);
    this.send({ type: this.beta ? 'response.text.done' : 'response.output_text.done', ...ref, text: result.text });
    this.send({ type: 'response.content_part.done', ...ref, part: { type: 'text', text: result.text } });
    const item = this.replyItem(active, result.text, status === 'completed' ? 'completed' : 'incomplete');
    this.send({ type: 'response.output_item.done', response_id: active.id, output_index: 0, item });
    if (!this.beta) this.send({ type: 'conversation.item.done', item, previous_item_id: active.previousItemId });
    this.send({ type: 'response.done', response: this.wireResponse(active, status, [item], details, result.type === 'done' ? wireUsage(result.usage) : null) });
    // After a barge-in the user is still talking: their next utterance starts the next response.
    if (this.responsePending && active.cancelReason !== 'turn_detected') {
      try {
        this.respond({});
      } catch (err) {
        this.sendError(err, undefined);
      }
    }
  }

  private events(): SessionEvents {
    return {
      speechStarted: (atMs) => {
        this.speechItemId = this.newId('item');
        const padding = this.settings.vad?.prefixPaddingMs ?? 0;
        const startMs = Math.max(this.lastStopMs, atMs - padding);
        this.send({ type: 'input_audio_buffer.speech_started', audio_start_ms: this.segmenterOffsetMs + startMs, item_id: this.speechItemId });
        // The session cancels the running turn right after this (bargeIn = interrupt_response).
        if (this.session.settings.bargeIn && this.active) {
          this.active.cancelReason = 'turn_detected';
          this.responsePending = false;
        }
      },
      speechStopped: (atMs) => {
        this.lastStopMs = atMs;
        this.send({ type: 'input_audio_buffer.speech_stopped', audio_end_ms: this.segmenterOffsetMs + atMs, item_id: this.speechItemId ?? this.newId('item') });
      },
      utterance: (audio) => this.onUtterance(audio),
      turnStarted: (turn) => this.responseStarted(turn.turnId),
      delta: (turnId, text) => this.responseDelta(turnId, text),
      turnEnded: (turnId, result) => this.responseEnded(turnId, result),
      busy: (error) => this.sendError(error, undefined),
    };
  }
}

function outcome(result: TurnResult, cancelReason: ActiveResponse['cancelReason']): { status: WireResponse['status']; details: WireResponse['status_details'] } {
  if (result.type === 'error')
    return { status: 'failed', details: { type: 'failed', error: { type: result.error.openaiType, code: result.error.code, message: result.error.message } } };
  if (result.finish === 'cancelled') return { status: 'cancelled', details: { type: 'cancelled', reason: cancelReason ?? 'client_cancelled' } };
  if (result.finish === 'length') return { status: 'incomplete', details: { type: 'incomplete', reason: 'max_output_tokens' } };
  return { status: 'completed', details: { type: 'completed' } };
}

function wireUsage(usage: Usage): WireUsage {
  const audio = usage.audioTokens ?? 0;
  return {
    total_tokens: usage.promptTokens + usage.completionTokens,
    input_tokens: usage.promptTokens,
    output_tokens: usage.completionTokens,
    input_token_details: { text_tokens: Math.max(0, usage.promptTokens - audio), audio_tokens: audio, cached_tokens: 0 },
    output_token_details: { text_tokens: usage.completionTokens, audio_tokens: 0 },
  };
}

export function realtimeRoute(ctx: ServerContext): WebSocketRoute {
  // Loaded before the server listens (startServer awaits it), so sessions start synchronously.
  let fvad: FvadModule | undefined;
  void loadFvad().then((module) => (fvad = module));
  return {
    path: '/v1/realtime',
    upgrade(request: UpgradeRequest): UpgradeDecision {
      if (ctx.draining()) return rejectUpgrade(new EarshotError('shutting_down', 'server is shutting down'));
      if (!fvad) return rejectUpgrade(new EarshotError('engine_unavailable', 'server is starting'));
      if (!ctx.authorize(bearerToken(request))) return rejectUpgrade(new EarshotError('unauthorized', 'missing or invalid API key'));
      const beta = (request.headers['openai-beta'] ?? '').includes('realtime=v1') || request.protocols.includes(BETA_PROTOCOL);
      const module = fvad;
      return {
        accept: true,
        // Browsers offer `realtime` next to the key protocol and fail the handshake unless one is selected.
        ...(request.protocols.includes('realtime') ? { protocol: 'realtime' } : {}),
        open: (connection) => new RealtimeConnection(ctx, connection, module, beta),
      };
    },
  };
}
