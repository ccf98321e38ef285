/**
 * The native front door, /v1/stream: msgpack frames ↔ Session calls. Thin on purpose:
 * parsing and validation are protocol/'s, conversation logic is Session's.
 */
import { randomUUID } from 'node:crypto';
import { decodeClientMessage, encodeRawAudio, encodeServerMessage, isRawAudio } from '../../protocol/codec.js';
import { CLOSE_NORMAL, EarshotError } from '../../protocol/errors.js';
import { PROTOCOL_VERSION, type ClientMessage, type HelloMessage, type ServerMessage } from '../../protocol/native.js';
import { createDecoder } from '../audio/select.js';
import { bearerToken } from '../auth/keys.js';
import type { ServerContext } from '../context.js';
import { rejectUpgrade } from '../http/respond.js';
import { NativeVoiceOut, settleVoice } from './voice.js';
import type { Expirable } from '../limits/lifetime.js';
import { logClientError } from '../observability/log.js';
import { localInput, offloadedInput } from '../session/audio-input.js';
import { Session } from '../session/session.js';
import type { SessionEvents } from '../session/types.js';
import { truncateReply } from '../session/truncate.js';
import type { Connection, SocketHandler, UpgradeDecision, UpgradeRequest, WebSocketRoute } from '../transport/types.js';
import { loadFvad } from '../vad/fvad.js';
import { segmenterFor } from '../vad/judging.js';

/** Audio frames held while the decoder starts (about 2 s of 20 ms frames). */
const MAX_EARLY_FRAMES = 100;

type Handlers = { [T in ClientMessage['type']]: (message: Extract<ClientMessage, { type: T }>) => void };

class NativeConnection implements SocketHandler, Expirable {
  private readonly ctx: ServerContext;
  private readonly connection: Connection;
  private readonly sessionId = randomUUID();
  private readonly headerAuthorized: boolean;
  private session: Session | undefined;
  private starting = false;
  private early: Uint8Array[] = [];
  /** Spoken replies, when hello asked for a voice and the server has one. */
  private voice: NativeVoiceOut | undefined;
  private audioSeq = 0;
  /** The turn whose audio is being framed (a session speaks one turn at a time). */
  private audioTurn = '';
  private closed = false;
  private readonly handlers: Handlers;
  /** Turn of each user item whose transcript is still to come (only with hello.transcribe). */
  private readonly turnOfItem = new Map<string, string>();
  /** A key may come in hello, so the upgrade lets keyless sockets in; this bounds how long they stay without one. */
  private helloTimer: NodeJS.Timeout | undefined;

  constructor(ctx: ServerContext, connection: Connection, headerAuthorized: boolean) {
    this.ctx = ctx;
    this.connection = connection;
    this.headerAuthorized = headerAuthorized;
    ctx.metrics.connections.inc();
    const { helloTimeoutMs } = ctx.config;
    if (helloTimeoutMs > 0)
      this.helloTimer = setTimeout(() => this.fail(new EarshotError('protocol_order', `no hello within ${helloTimeoutMs} ms`, { fatal: true })), helloTimeoutMs).unref();
    this.handlers = {
      hello: (m) => this.hello(m),
      audio: (m) => this.audio(m.data, 0),
      commit: (m) => this.requireSession().commit(m.ack ? () => this.send({ type: 'committed' }) : undefined),
      text: (m) => this.requireSession().addText(m.text),
      cancel: () => this.requireSession().cancel(),
      bye: () => this.connection.close(CLOSE_NORMAL, 'bye'),
      truncate: (m) => {
        const session = this.requireSession();
        const item = session.replyOf(m.turnId);
        if (!item) throw new EarshotError('not_found', `no reply of turn '${m.turnId}' in the conversation`);
        this.send({ type: 'truncated', turnId: m.turnId, audioEndMs: m.audioEndMs, text: truncateReply(item, m.audioEndMs) });
      },
    };
  }

  message(data: Uint8Array, isBinary: boolean): void {
    try {
      if (data.length > this.ctx.config.maxMessageBytes)
        throw new EarshotError('too_large', `message of ${data.length} bytes exceeds the ${this.ctx.config.maxMessageBytes} byte limit`, { fatal: true });
      if (!isBinary) throw new EarshotError('bad_message', 'the native protocol uses binary msgpack frames, not text');
      // The packet is read past the tag byte where it lies: no view per frame.
      if (isRawAudio(data)) return this.audio(data, 1);
      const message = decodeClientMessage(data);
      (this.handlers[message.type] as (m: ClientMessage) => void)(message);
    } catch (err) {
      this.fail(err);
    }
  }

  /** Frames its listening shard decoded without them crossing to this thread (they count as the session's). */
  heard(frames: number): void {
    this.ctx.metrics.frames.add(frames);
  }

  /** A limit (idle, duration, shutdown) ended the session: say so in the protocol before the socket closes. */
  expire(error: EarshotError): void {
    this.fail(error);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.helloTimer);
    this.ctx.metrics.connections.dec();
    if (this.session) {
      this.ctx.metrics.sessions.dec({ door: 'native' });
      this.session.close();
    }
    this.voice?.close();
  }

  /** In order with the voice's frames, which may still be encoding; `now` skips the line (VAD events, a fatal error just before the close). */
  private send(message: ServerMessage, now = false): void {
    const bytes = encodeServerMessage(message);
    if (this.voice && !now) this.voice.message(bytes);
    else this.connection.send(bytes);
  }

  private sendAudio(frame: Uint8Array, turnId: string): void {
    if (turnId !== this.audioTurn) [this.audioTurn, this.audioSeq] = [turnId, 0];
    if (this.voice!.settings.raw) this.connection.send(encodeRawAudio(frame));
    else this.connection.send(encodeServerMessage({ type: 'audio', turnId, seq: this.audioSeq++, data: frame as Uint8Array<ArrayBuffer> }));
  }

  private fail(err: unknown): void {
    const error = EarshotError.from(err);
    logClientError(this.ctx.logger, error, { session: this.sessionId, door: 'native' });
    this.ctx.metrics.errors.inc({ code: error.code });
    this.send({ type: 'error', code: error.code, message: error.message, fatal: error.fatal, ...(error.retryable ? { retryable: true } : {}) }, error.fatal);
    if (error.fatal) this.connection.close(error.closeCode, error.message.slice(0, 120));
  }

  private requireSession(): Session {
    if (!this.session) throw new EarshotError('protocol_order', this.starting ? 'session is starting; wait for ready' : 'send hello first');
    return this.session;
  }

  /** The packet is `data` from `start` on. */
  private audio(data: Uint8Array, start: number): void {
    if (this.session) {
      this.session.pushAudio(data, start);
      return;
    }
    if (!this.starting) throw new EarshotError('protocol_order', 'audio before hello: send hello first');
    if (this.early.length >= MAX_EARLY_FRAMES) throw new EarshotError('limit_exceeded', 'too much audio before ready');
    this.early.push(data.slice(start));
  }

  private hello(hello: HelloMessage): void {
    if (this.session || this.starting) throw new EarshotError('protocol_order', 'hello was already received');
    if (!this.headerAuthorized && !this.ctx.authorize(hello.token)) throw new EarshotError('unauthorized', 'missing or invalid token', { fatal: true });
    clearTimeout(this.helloTimer);
    if (hello.version !== undefined && hello.version > PROTOCOL_VERSION)
      throw new EarshotError('unsupported', `protocol version ${hello.version} is newer than this server's ${PROTOCOL_VERSION}`, { fatal: true });
    this.starting = true;
    this.start(hello).catch((err: unknown) => {
      this.starting = false;
      this.fail(err instanceof EarshotError ? new EarshotError(err.code, err.message, { fatal: true }) : err);
    });
  }

  private async start(hello: HelloMessage): Promise<void> {
    const { config } = this.ctx;
    const defaults = this.ctx.sessionDefaults();
    const vad = hello.vad ?? {};
    const maxUtteranceMs = Math.min(vad.maxUtteranceMs ?? config.maxUtteranceMs, config.maxUtteranceMs);
    const audio = { codec: hello.codec, sampleRate: hello.sampleRate, channels: hello.channels ?? 1 } as const;
    const segmenterSettings = {
      prefixPaddingMs: vad.prefixPaddingMs ?? config.vadPrefixPaddingMs,
      silenceMs: vad.silenceMs ?? config.vadSilenceMs,
      minSpeechMs: vad.minSpeechMs ?? config.vadMinSpeechMs,
      maxUtteranceMs,
    };
    const judging = { mode: config.vad, aggressiveness: vad.aggressiveness ?? config.vadAggressiveness, threshold: config.vadThreshold };
    const stage = this.ctx.voice;
    const voice = hello.voice && stage ? settleVoice(hello.voice, stage.resolveVoice(hello.voice.name, 'voice.name')) : undefined;
    // Manual-turn sessions buffer in the Session itself, so only VAD sessions decode elsewhere: on the
    // listening shard that owns the socket, else on an audio thread.
    const threads = vad.enabled === false ? undefined : (this.connection.audio ?? this.ctx.audioThreads);
    // The decoder is built here even for audio threads: building it is what validates the codec and rate.
    const decoder = await createDecoder(audio);
    const fvad = await loadFvad();
    if (this.closed || threads) decoder.close();
    if (this.closed) return;
    if (voice && stage)
      this.voice = new NativeVoiceOut(
        voice,
        { frame: (frame, turnId) => this.sendAudio(frame, turnId), message: (bytes) => this.connection.send(bytes), failed: (error) => this.fail(error) },
        stage.encoding,
      );
    const session = new Session(
      this.sessionId,
      { scheduler: this.ctx.scheduler, metrics: this.ctx.metrics, logger: this.ctx.logger, door: 'native', speak: stage && ((name, signal, speed) => stage.reply(name, signal, { speed, live: true })) },
      {
        ...defaults,
        voice: voice?.name,
        ...(voice ? { speed: voice.speed } : {}),
        ...(hello.system !== undefined ? { system: hello.system } : {}),
        params: { ...defaults.params, ...hello.params },
        bargeIn: vad.bargeIn ?? defaults.bargeIn,
        ...(hello.transcribe ? { transcription: hello.transcribe === true ? {} : hello.transcribe } : {}),
      },
      this.events(),
    );
    // Built after the session: its events (some after a Silero verdict) go straight to it.
    const segmenter =
      vad.enabled === false || threads ? undefined : segmenterFor(fvad, judging, segmenterSettings, this.ctx.confirmer, (event) => session.handleSegment(event));
    session.setAudioInput(
      threads
        ? offloadedInput(threads.attach({ audio, judging, segmenter: segmenterSettings }, { segment: (event) => session.handleSegment(event), error: (err) => this.fail(err) }))
        : localInput(decoder, segmenter, maxUtteranceMs),
    );
    this.session = session;
    this.starting = false;
    this.ctx.metrics.sessions.inc({ door: 'native' });
    const model = this.ctx.primaryModel();
    this.send({
      type: 'ready',
      version: PROTOCOL_VERSION,
      sessionId: this.sessionId,
      transport: this.ctx.transportName(),
      engine: this.ctx.engine.name,
      testEngine: model.testEngine,
      limits: { maxMessageBytes: config.maxMessageBytes, maxUtteranceMs, maxHistoryTurns: config.maxHistoryTurns, idleTimeoutMs: config.idleTimeoutMs },
      ...(voice ? { voice } : {}),
    });
    const early = this.early;
    this.early = [];
    for (const frame of early) {
      try {
        session.pushAudio(frame);
      } catch (err) {
        this.fail(err);
      }
    }
  }

  private events(): SessionEvents {
    return {
      // What was heard goes out at once, not in line behind spoken frames still encoding (at the
      // lowest priority, they wait on a busy machine): a client stops its playback on `speech`.
      speechStarted: (atMs) => this.send({ type: 'vad', state: 'speech', atMs }, true),
      speechStopped: (atMs) => this.send({ type: 'vad', state: 'silence', atMs }, true),
      turnStarted: (turn) => {
        const { itemId, ...wire } = turn;
        if (this.session?.settings.transcription && turn.audioMs > 0) this.turnOfItem.set(itemId, turn.turnId);
        this.send({ type: 'turn', ...wire });
      },
      // Whole transcripts only: a turn's words arrive in one message, next to its reply's deltas.
      transcript: (itemId, event) => {
        const turnId = this.turnOfItem.get(itemId);
        if (turnId === undefined || event.type === 'delta') return;
        this.turnOfItem.delete(itemId);
        if (event.type === 'completed') this.send({ type: 'transcript', turnId, text: event.text });
        else this.send({ type: 'transcript', turnId, text: '', error: { code: event.error.code, message: event.error.message } });
      },
      delta: (turnId, text) => this.send({ type: 'delta', turnId, text }),
      audio: (turnId, pcm) => this.voice?.push(turnId, pcm),
      // Not tied to the turn: the turn goes on, with its text and without the rest of its voice.
      voiceFailed: (_turnId, error) => this.fail(error),
      inputFailed: (error) => this.fail(error),
      turnEnded: (turnId, result) => {
        // The last frame goes before `done`; a reply cut off sends nothing more.
        if (result.type === 'done' && result.finish !== 'cancelled') this.voice?.flush(turnId);
        else this.voice?.reset(turnId);
        if (result.type === 'done') this.send({ type: 'done', turnId, usage: result.usage, finish: result.finish });
        else if (result.error.code !== 'busy') {
          this.ctx.metrics.errors.inc({ code: result.error.code });
          this.send({ type: 'error', code: result.error.code, message: result.error.message, fatal: false, turnId, ...(result.error.retryable ? { retryable: true } : {}) });
        }
      },
      busy: (error, turnId) => {
        // The turn was announced: its id tells the client which turn ended here. Other refusals
        // (e.g. shutting_down) reach turnEnded right after, which sends their one `error`.
        if (error.code === 'busy') this.send({ type: 'busy', retryAfterMs: error.retryAfterMs ?? this.ctx.config.busyRetryAfterMs, turnId });
      },
    };
  }
}

export function nativeRoute(ctx: ServerContext): WebSocketRoute {
  return {
    path: '/v1/stream',
    upgrade(request: UpgradeRequest): UpgradeDecision {
      if (ctx.draining()) return rejectUpgrade(new EarshotError('shutting_down', 'server is shutting down'));
      const presented = bearerToken(request);
      if (presented !== undefined && !ctx.authorize(presented)) return rejectUpgrade(new EarshotError('unauthorized', 'invalid API key'));
      const headerAuthorized = presented !== undefined;
      return { accept: true, open: (connection) => new NativeConnection(ctx, connection, headerAuthorized) };
    },
  };
}
