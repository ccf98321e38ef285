/**
 * The OpenAI Realtime front door, /v1/realtime: JSON events ↔ Session calls. Audio in, text
 * out. GA event names by default; a beta client (OpenAI-Beta: realtime=v1 or the
 * openai-beta.realtime-v1 subprotocol) gets the beta names and session shape.
 *
 * Turns are driven from here (Session.autoRespond is off): an utterance becomes a committed
 * user item, and a response starts when turn detection's create_response says so or the
 * client sends response.create. Bad input yields an `error` event; the connection stays open.
 *
 * This file holds the connection: the event table, settings, and which response runs. The
 * parts: wire.ts (ids, sending, errors), router.ts (the event table), config.ts (settings),
 * audio.ts (input formats), input.ts (input buffer, turn detection), items.ts (conversation
 * items), response.ts (one response and its output parts).
 */
import { EarshotError } from '../../protocol/errors.js';
import { parseClientEvent, type ResponseConfig, type SessionConfig } from '../../protocol/realtime.js';
import type { Pcm16k } from '../audio/format.js';
import { bearerToken } from '../auth/keys.js';
import type { ServerContext } from '../context.js';
import { rejectUpgrade } from '../http/respond.js';
import { Session } from '../session/session.js';
import type { SessionEvents, TurnResult } from '../session/types.js';
import type { Connection, SocketHandler, UpgradeDecision, UpgradeRequest, WebSocketRoute } from '../transport/types.js';
import { loadFvad, type FvadModule } from '../vad/fvad.js';
import { formatFromBeta, formatFromGa, sameFormat } from './audio.js';
import { applyUpdate, chooseVoice, defaultSettings, outputOf, renderSession, type RealtimeSettings } from './config.js';
import { RealtimeInput } from './input.js';
import { RealtimeItems } from './items.js';
import { RealtimeResponse, type ResponseAudio } from './response.js';
import { EventRouter } from './router.js';
import { RealtimeError, RealtimeWire } from './wire.js';

const BETA_PROTOCOL = 'openai-beta.realtime-v1';

class RealtimeConnection implements SocketHandler {
  private readonly ctx: ServerContext;
  private readonly connection: Connection;
  private readonly wire: RealtimeWire;
  private readonly session: Session;
  private settings: RealtimeSettings;
  private readonly input: RealtimeInput;
  private readonly items: RealtimeItems;
  private readonly router = new EventRouter();
  private readonly text = new TextDecoder('utf-8', { fatal: true });
  private active: RealtimeResponse | undefined;
  /** An utterance was committed while a response ran: respond again when it ends. */
  private responsePending = false;
  /** The session has spoken: its voice can no longer change. */
  private spoke = false;
  private closed = false;

  constructor(ctx: ServerContext, connection: Connection, fvad: FvadModule, beta: boolean, kind: RealtimeSettings['kind']) {
    this.ctx = ctx;
    this.connection = connection;
    this.wire = new RealtimeWire(connection, beta, ctx);
    this.settings = defaultSettings(ctx.config, ctx.voice, kind);
    const defaults = ctx.sessionDefaults();
    const stage = ctx.voice;
    this.session = new Session(
      this.wire.sessionId,
      { scheduler: ctx.scheduler, metrics: ctx.metrics, logger: ctx.logger, door: 'realtime', speak: stage && ((voice, signal, speed) => stage.reply(voice, signal, { speed, live: true })) },
      { ...defaults, params: { ...defaults.params }, autoRespond: false, coalesce: false },
      this.events(),
    );
    this.input = new RealtimeInput(this.session, this.wire, fvad, ctx.config, ctx.confirmer, connection.audio);
    this.items = new RealtimeItems(this.session, this.wire);
    this.applySettings(this.settings, true);
    ctx.metrics.connections.inc();
    ctx.metrics.sessions.inc({ door: 'realtime' });
    this.router
      .on('session.update', (e) => this.update(e.session, e.event_id))
      .on('input_audio_buffer.append', (e) => this.input.append(e.audio))
      .on('input_audio_buffer.commit', (e) => this.input.commit(e.event_id))
      .on('input_audio_buffer.clear', () => this.input.clear(this.settings))
      .on('conversation.item.create', (e) => this.items.create(e, this.settings.format))
      .on('conversation.item.delete', (e) => this.items.delete(e.item_id))
      .on('conversation.item.retrieve', (e) => this.items.retrieve(e.item_id))
      .on('conversation.item.truncate', (e) => this.items.truncate(e))
      .on('response.create', (e) => this.respond(e.response ?? {}, e.event_id))
      .on('response.cancel', (e) => this.cancel(e.response_id));
    this.wire.send({ type: 'session.created', session: this.renderSession() });
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
      this.router.dispatch(parsed.event);
    } catch (err) {
      this.wire.error(err, eventId);
    }
  }

  /** Appends its listening shard decoded without them crossing to this thread (they count as the session's frames). */
  heard(frames: number): void {
    this.ctx.metrics.frames.add(frames);
  }

  /** A limit (idle, duration, shutdown) ended the session: say so before the guard closes the socket. */
  expire(error: EarshotError): void {
    this.wire.error(error, undefined);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.wire.close();
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

  private renderSession(): Record<string, unknown> {
    return renderSession(this.settings, { id: this.wire.sessionId, model: this.ctx.primaryModel().id }, this.wire.beta);
  }

  /* session.update */

  private update(update: SessionConfig, clientEventId: string | undefined): void {
    const { settings, warnings } = applyUpdate(this.settings, update, this.ctx.config, { stage: this.ctx.voice, locked: this.spoke });
    for (const warning of warnings) this.wire.error(warning, clientEventId);
    this.applySettings(settings, false);
    this.wire.send({ type: 'session.updated', session: this.renderSession() });
  }

  private applySettings(next: RealtimeSettings, initial: boolean): void {
    const previous = this.settings;
    this.settings = next;
    const s = this.session.settings;
    if (next.instructions) s.system = next.instructions;
    else delete s.system;
    s.params.maxTokens = this.maxTokens(next.maxOutputTokens);
    s.params.temperature = next.temperature;
    s.bargeIn = next.kind === 'realtime' && (next.vad?.interruptResponse ?? false);
    const { language, prompt } = next.transcription ?? {};
    if (next.transcription) s.transcription = { ...(language ? { language } : {}), ...(prompt ? { prompt } : {}) };
    else delete s.transcription;
    const vadChanged = JSON.stringify(previous.vad) !== JSON.stringify(next.vad);
    if (initial || vadChanged || !sameFormat(previous.format, next.format)) this.input.rebuild(next);
  }

  private maxTokens(limit: number | 'inf'): number {
    return limit === 'inf' ? this.ctx.config.maxTokens : limit;
  }

  /* responses */

  /** A response on the conversation so far; `clientEventId` is unset for the ones turn detection creates. */
  private respond(config: ResponseConfig, clientEventId?: string): void {
    if (this.settings.kind === 'transcription')
      throw new RealtimeError('unsupported', 'unsupported', 'a transcription session transcribes input audio and never responds');
    if (this.active)
      throw new RealtimeError('protocol_order', 'conversation_already_has_active_response', `response ${this.active.id} is still in progress`);
    const modalities = config.output_modalities ?? config.modalities;
    const warnings: EarshotError[] = [];
    const param = config.output_modalities ? 'response.output_modalities' : 'response.modalities';
    const output = modalities ? outputOf(modalities, this.ctx.voice, param, warnings) : this.settings.output;
    const audio = output === 'audio' ? this.responseAudio(config, warnings) : undefined;
    for (const warning of warnings) this.wire.error(warning, clientEventId);
    const maxOutputTokens = config.max_output_tokens ?? config.max_response_output_tokens ?? this.settings.maxOutputTokens;
    const response = new RealtimeResponse(this.wire, this.items.lastId(), maxOutputTokens, audio);
    // The session speaks this turn (at the session's speed, fixed for the turn) or not at all.
    this.session.settings.voice = audio && this.ctx.voice?.resolveVoice(audio.voice);
    this.session.settings.speed = this.settings.speed;
    this.active = response;
    this.responsePending = false;
    this.ctx.logger.debug({ session: this.wire.sessionId, response: response.id }, 'realtime response');
    try {
      this.session.respond({
        maxTokens: this.maxTokens(maxOutputTokens),
        ...(config.temperature !== undefined ? { temperature: config.temperature } : {}),
        ...(config.instructions !== undefined ? { instructions: config.instructions } : {}),
        replyItemId: response.itemId,
      });
    } catch (err) {
      if (this.active === response) this.active = undefined;
      throw err;
    }
  }

  /** A spoken response's voice and format: the session's, or the response's own (GA response.audio.output, beta voice / output_audio_format). */
  private responseAudio(config: ResponseConfig, warnings: EarshotError[]): ResponseAudio {
    const ga = config.audio?.output;
    let format = this.settings.outputFormat;
    if (ga?.format) format = formatFromGa(ga.format, 'response.audio.output.format');
    else if (config.output_audio_format !== undefined) format = formatFromBeta(config.output_audio_format, 'response.output_audio_format');
    const param = ga?.voice !== undefined ? 'response.audio.output.voice' : 'response.voice';
    const voice = chooseVoice(this.settings.voice, ga?.voice ?? config.voice, param, { stage: this.ctx.voice, locked: this.spoke }, warnings);
    return { format, voice };
  }

  private cancel(responseId: string | undefined): void {
    const active = this.active;
    if (!active) throw new RealtimeError('protocol_order', 'response_cancel_not_active', 'there is no response in progress to cancel');
    if (responseId !== undefined && responseId !== active.id)
      throw new RealtimeError('protocol_order', 'response_cancel_not_active', `response '${responseId}' is not in progress`, { param: 'response_id' });
    active.cancelReason = 'client_cancelled';
    this.session.cancel();
  }

  private responseEnded(turnId: string, result: TurnResult): void {
    const active = this.active;
    if (active?.turnId !== turnId) return;
    this.active = undefined;
    active.ended(result);
    // After a barge-in the user is still talking: their next utterance starts the next response.
    if (this.responsePending && active.cancelReason !== 'turn_detected') {
      try {
        this.respond({});
      } catch (err) {
        this.wire.error(err, undefined);
      }
    }
  }

  /** An utterance ended (VAD or commit): it becomes the user item speech_started announced. */
  private onUtterance(audio: Pcm16k): void {
    const item = this.items.addUtterance(this.input.takeItemId(), audio);
    // After committed, added and done (transcript null), as OpenAI orders them; its events may interleave with a response's.
    this.session.transcribe(item);
    if (this.settings.kind === 'transcription' || !this.settings.vad?.createResponse) return;
    if (this.active) this.responsePending = true;
    else this.respond({});
  }

  private events(): SessionEvents {
    return {
      speechStarted: (atMs) => {
        this.input.speechStarted(atMs, this.settings.vad?.prefixPaddingMs ?? 0);
        // The session cancels the running turn right after this (bargeIn = interrupt_response).
        if (this.session.settings.bargeIn && this.active) {
          this.active.cancelReason = 'turn_detected';
          this.responsePending = false;
        }
      },
      speechStopped: (atMs) => this.input.speechStopped(atMs),
      utterance: (audio) => this.onUtterance(audio),
      turnStarted: (turn) => this.active!.started(turn.turnId),
      delta: (turnId, text) => {
        if (this.active?.turnId === turnId) this.active.delta(text);
      },
      audio: (turnId, pcm) => {
        if (this.active?.turnId !== turnId) return;
        this.spoke = true;
        this.active.audio(pcm);
      },
      voiceFailed: (_turnId, error) => this.wire.error(error, undefined),
      // Unlike bad input, this ends the connection: without turn detection the session cannot go on as configured.
      inputFailed: (error) => {
        this.wire.error(error, undefined);
        this.connection.close(error.closeCode, error.message.slice(0, 120));
      },
      turnEnded: (turnId, result) => this.responseEnded(turnId, result),
      transcript: (itemId, event) => this.items.transcript(itemId, event),
      busy: (error) => this.wire.error(error, undefined),
    };
  }
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
        // A transcription session (VAD and transcripts, never a response) asks by URL, as OpenAI's do.
        open: (connection) => new RealtimeConnection(ctx, connection, module, beta, request.query.get('intent') === 'transcription' ? 'transcription' : 'realtime'),
      };
    },
  };
}
