/**
 * EarshotClient: the native /v1/stream protocol from Node. Typed events over the server's
 * message union, replies as async iterables, audio sent as raw frames with backpressure,
 * and optional reconnection (a new session, same settings) with exponential backoff.
 */
import WebSocket from 'ws';
import { z } from 'zod';
import { decodeServerMessage, encodeClientMessage, encodeRawAudio } from '../../protocol/codec.js';
import { CLOSE_NORMAL } from '../../protocol/errors.js';
import { GenerationParams, Hello, RAW_AUDIO_TAG, TranscriptionSettings, VadSettings, VoiceRequest, type ClientMessage, type HelloMessage, type ServerMessage } from '../../protocol/native.js';
import { EarshotConnectionError, EarshotServerError } from './errors.js';
import { AsyncQueue } from './queue.js';
import { streamUrl } from './url.js';
import { Turn, type TurnResult } from './turn.js';

type MessageOf<K extends ServerMessage['type']> = Extract<ServerMessage, { type: K }>;
export type ReadyMessage = MessageOf<'ready'>;

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Listeners: one per server message type, plus the connection's own life. */
export type ClientEvents = { [K in ServerMessage['type']]: (message: MessageOf<K>) => void } & {
  /** A new turn; the same object `turns()` yields. */
  reply: (turn: Turn) => void;
  state: (state: ConnectionState) => void;
  reconnecting: (info: { attempt: number; delayMs: number; error: EarshotConnectionError | EarshotServerError }) => void;
  /** The client is closed for good: by close(), or because reconnecting is off or gave up. */
  closed: (error: EarshotConnectionError | EarshotServerError | undefined) => void;
  /** A frame from the server that failed validation (protocol/native.ts); it is dropped. */
  malformed: (error: Error) => void;
};

const ReconnectOptions = z
  .object({
    initialDelayMs: z.number().int().min(1).default(250),
    maxDelayMs: z.number().int().min(1).default(5000),
    /** Attempts in a row before giving up; 0 = forever. */
    maxAttempts: z.number().int().min(0).default(0),
  })
  .strict();

const ClientOptions = z
  .object({
    /** The server: an http(s):// base URL (`/v1/stream` is added) or the ws(s):// URL of /v1/stream. */
    url: z.string().transform((address, ctx) => {
      try {
        return streamUrl(address);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
    token: z.string().max(512).optional(),
    codec: z.enum(['opus', 'pcm16']).default('pcm16'),
    sampleRate: z.number().int().default(16000),
    channels: z.union([z.literal(1), z.literal(2)]).optional(),
    vad: VadSettings.optional(),
    system: z.string().max(16_384).optional(),
    params: GenerationParams.optional(),
    /** Ask for spoken replies: codec, sample rate (default 24000), voice name, raw frames; `ready.voice` says what the server settled. */
    voice: VoiceRequest.optional(),
    /** true or hints: the server transcribes each audio turn; see Turn.transcript. */
    transcribe: z.union([z.boolean(), TranscriptionSettings]).optional(),
    /** true = default backoff; false = a dropped connection closes the client. */
    reconnect: z.union([z.boolean(), ReconnectOptions.partial()]).default(false),
    /** sendAudio() waits while more than this many bytes are buffered for the socket... */
    highWaterMark: z.number().int().min(1).default(256 << 10),
    /** ...until they fall to this. */
    lowWaterMark: z.number().int().min(0).default(64 << 10),
    connectTimeoutMs: z.number().int().min(1).default(10_000),
  })
  .strict()
  .refine((o) => o.lowWaterMark <= o.highWaterMark, { message: 'lowWaterMark must not exceed highWaterMark' });

export type EarshotClientOptions = z.input<typeof ClientOptions>;
type Options = z.output<typeof ClientOptions>;

/** Codes after which reconnecting would only fail again. */
const SENT = Promise.resolve(true);

const PERMANENT_ERRORS = new Set(['unauthorized', 'forbidden', 'unsupported', 'bad_message', 'protocol_order', 'not_found']);

export class EarshotClient {
  readonly url: string;
  private readonly options: Options;
  private readonly reconnectOptions: z.output<typeof ReconnectOptions> | undefined;
  private readonly hello: HelloMessage;
  private readonly listeners = new Map<keyof ClientEvents, Set<(arg: never) => void>>();
  private ws: WebSocket | undefined;
  private currentState: ConnectionState = 'idle';
  private readyMessage: ReadyMessage | undefined;
  private speakingNow = false;
  private readonly open = new Map<string, ReturnType<typeof Turn.create>>();
  /** The latest turn announced: a session speaks one turn at a time, so raw audio frames are its. */
  private latest: ReturnType<typeof Turn.create> | undefined;
  /** Audio turns whose transcript has not come yet (it may come after the turn ended). */
  private readonly unheard = new Map<string, ReturnType<typeof Turn.create>>();
  private readonly subscribers = new Set<AsyncQueue<Turn>>();
  private readonly pongs: (() => void)[] = [];
  private readonly commits: (() => void)[] = [];
  /** One buffer for every raw audio frame: ws copies it while masking, before send() returns. */
  private scratch = new Uint8Array(1 + 4096);
  private drained: Promise<boolean> | undefined;
  private resolveDrained: ((open: boolean) => void) | undefined;
  private closing = false;
  private lastError: EarshotConnectionError | EarshotServerError | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;

  constructor(options: EarshotClientOptions) {
    const parsed = ClientOptions.safeParse(options);
    if (!parsed.success) throw new TypeError(`invalid EarshotClient options: ${z.prettifyError(parsed.error)}`);
    this.options = parsed.data;
    this.url = parsed.data.url;
    const r = parsed.data.reconnect;
    this.reconnectOptions = r === false ? undefined : ReconnectOptions.parse(r === true ? {} : r);
    const { codec, sampleRate, channels, vad, system, params, token, voice, transcribe } = parsed.data;
    const hello = Hello.safeParse({ type: 'hello', version: 1, codec, sampleRate, channels, vad, system, params, token, voice, transcribe });
    if (!hello.success) throw new TypeError(`invalid EarshotClient options: ${z.prettifyError(hello.error)}`);
    this.hello = hello.data;
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** The server's latest `ready` (session id, engine, whether it is the echo test engine, limits). */
  get ready(): ReadyMessage | undefined {
    return this.readyMessage;
  }

  /** Whether the server's VAD has an utterance open (between `vad: speech` and `vad: silence`). */
  get speaking(): boolean {
    return this.speakingNow;
  }

  /** Turns that have not ended yet. */
  get pendingTurns(): Turn[] {
    return [...this.open.values()].map((t) => t.turn);
  }

  /** Turns whose transcript has not arrived yet (with `transcribe`). */
  get pendingTranscripts(): Turn[] {
    return [...this.unheard.values()].map((t) => t.turn);
  }

  on<K extends keyof ClientEvents>(event: K, listener: ClientEvents[K]): this {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as (arg: never) => void);
    return this;
  }

  off<K extends keyof ClientEvents>(event: K, listener: ClientEvents[K]): this {
    this.listeners.get(event)?.delete(listener as (arg: never) => void);
    return this;
  }

  once<K extends keyof ClientEvents>(event: K, listener: ClientEvents[K]): this {
    const wrapper = ((arg: never) => {
      this.off(event, wrapper);
      (listener as (arg: never) => void)(arg);
    }) as ClientEvents[K];
    return this.on(event, wrapper);
  }

  /** Opens the socket, sends `hello` and resolves with the server's `ready`. */
  async connect(): Promise<ReadyMessage> {
    if (this.currentState !== 'idle') throw new Error(`connect() called in state ${this.currentState}`);
    this.setState('connecting');
    try {
      return await this.openSocket();
    } catch (err) {
      this.finalClose(err as EarshotConnectionError);
      throw err;
    }
  }

  /**
   * Yields each turn the server starts from now on, until the client closes for good.
   * Every call is an independent subscription.
   */
  turns(): AsyncIterableIterator<Turn> {
    const queue = new AsyncQueue<Turn>();
    if (this.currentState === 'closed') queue.end();
    else this.subscribers.add(queue);
    return queue;
  }

  /**
   * Sends one packet of the session's codec as a raw frame. Resolves false if the
   * connection is down (audio is live: it is dropped, not queued), true once the socket's
   * buffer is under the low-water mark again.
   */
  sendAudio(payload: Uint8Array): Promise<boolean> {
    const ws = this.ws;
    if (!ws || this.currentState !== 'open') return Promise.resolve(false);
    if (payload.length + 1 > this.scratch.length) this.scratch = new Uint8Array(payload.length + 1 + 4096);
    ws.send(encodeRawAudio(payload, this.scratch), this.onWritten);
    if (ws.bufferedAmount <= this.options.highWaterMark) return SENT;
    return (this.drained ??= new Promise((resolve) => (this.resolveDrained = resolve)));
  }

  /**
   * Ends the current utterance now (VAD or manual turns). Resolves once the server has judged
   * everything sent before it and announced the utterance's turn, if any (or the socket closed).
   */
  commit(): Promise<void> {
    this.send({ type: 'commit', ack: true });
    return new Promise((resolve) => this.commits.push(resolve));
  }

  /** A typed user turn. */
  text(text: string): void {
    this.send({ type: 'text', text });
  }

  /** Stops the reply being generated (and spoken); it ends with finish 'cancelled'. */
  cancel(): void {
    this.send({ type: 'cancel' });
  }

  /** Tells the server a turn's audio was played only up to `audioEndMs`: its reply in the history becomes what was heard (answered by `truncated`). */
  truncate(turnId: string, audioEndMs: number): void {
    this.send({ type: 'truncate', turnId, audioEndMs: Math.max(0, Math.round(audioEndMs)) });
  }

  /**
   * Resolves once the server has handled everything sent before it (a WebSocket ping: the
   * server answers it in order, after the messages ahead of it), so anything it sent in
   * response, such as `turn` for a committed utterance, has arrived.
   */
  sync(): Promise<void> {
    const ws = this.requireOpen();
    return new Promise((resolve) => {
      this.pongs.push(resolve);
      ws.ping();
    });
  }

  /** Says `bye`, closes the socket and stops reconnecting. Turns still open end with an error. */
  async close(): Promise<void> {
    if (this.currentState === 'closed') return;
    this.closing = true;
    clearTimeout(this.reconnectTimer);
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      if (this.currentState === 'open') ws.send(encodeClientMessage({ type: 'bye' }));
      const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
      ws.close(CLOSE_NORMAL);
      await closed;
    } else ws?.terminate();
    this.finalClose(undefined);
  }

  /** Runs as each write reaches the kernel, so a waiting sender resumes without polling. */
  private readonly onWritten = (): void => {
    const resolve = this.resolveDrained;
    if (!resolve || (this.ws && this.ws.bufferedAmount > this.options.lowWaterMark)) return;
    this.resolveDrained = undefined;
    this.drained = undefined;
    resolve(this.currentState === 'open');
  };

  private send(message: ClientMessage): void {
    this.requireOpen().send(encodeClientMessage(message));
  }

  private requireOpen(): WebSocket {
    if (!this.ws || this.currentState !== 'open') throw new EarshotConnectionError(`not connected to ${this.url} (state ${this.currentState})`, 'closed');
    return this.ws;
  }

  private setState(state: ConnectionState): void {
    if (state === this.currentState) return;
    this.currentState = state;
    this.emit('state', state);
  }

  private emit<K extends keyof ClientEvents>(event: K, arg: Parameters<ClientEvents[K]>[0]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) (listener as (a: typeof arg) => void)(arg);
  }

  /** One socket's life: resolves on `ready`, rejects if it never gets there. */
  private openSocket(): Promise<ReadyMessage> {
    const headers: Record<string, string> = this.options.token ? { authorization: `Bearer ${this.options.token}` } : {};
    // No permessage-deflate: audio does not compress, and without it ws copies each frame
    // synchronously, which is what lets sendAudio reuse one buffer.
    const ws = new WebSocket(this.url, { perMessageDeflate: false, headers, handshakeTimeout: this.options.connectTimeoutMs });
    ws.binaryType = 'nodebuffer';
    this.ws = ws;
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (error: EarshotConnectionError | EarshotServerError) => {
        this.lastError = error;
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error);
      };
      const timer = setTimeout(() => {
        fail(new EarshotConnectionError(`no ready from ${this.url} within ${this.options.connectTimeoutMs} ms`, 'timeout'));
        ws.terminate();
      }, this.options.connectTimeoutMs);
      ws.on('open', () => ws.send(encodeClientMessage(this.hello)));
      ws.on('unexpected-response', (_req, res) => {
        fail(new EarshotConnectionError(`cannot reach ${this.url}: HTTP ${res.statusCode} ${res.statusMessage ?? ''}`.trim(), `http_${res.statusCode}`));
        ws.terminate();
      });
      ws.on('error', (err: NodeJS.ErrnoException) => {
        const code = err.code ?? 'error';
        fail(new EarshotConnectionError(`cannot reach ${this.url}: ${err.code ?? err.message}`, code, { cause: err }));
      });
      ws.on('pong', () => this.pongs.shift()?.());
      ws.on('message', (data, isBinary) => {
        if (!isBinary) return;
        const bytes = data as Buffer;
        // A raw audio frame belongs to the turn being spoken: the latest one announced.
        if (bytes[0] === RAW_AUDIO_TAG) return this.latest?.audio(bytes.subarray(1));
        let message: ServerMessage;
        try {
          message = decodeServerMessage(bytes);
        } catch (err) {
          this.emit('malformed', err as Error);
          return;
        }
        if (message.type === 'ready' && !settled) {
          settled = true;
          clearTimeout(timer);
          this.lastError = undefined;
          this.onServerMessage(message);
          resolve(message);
          return;
        }
        if (message.type === 'error' && message.fatal) fail(new EarshotServerError(message.code, message.message, true));
        this.onServerMessage(message);
      });
      ws.on('close', (code, reason) => {
        clearTimeout(timer);
        fail(new EarshotConnectionError(`connection to ${this.url} closed (${code}${reason.length ? ` ${reason.toString()}` : ''})`, 'closed'));
        if (this.ws === ws) this.onSocketClosed();
      });
    });
  }

  private onSocketClosed(): void {
    this.ws = undefined;
    this.speakingNow = false;
    for (const resolve of this.pongs.splice(0)) resolve();
    for (const resolve of this.commits.splice(0)) resolve();
    this.onWritten();
    const error = this.lastError ?? new EarshotConnectionError(`connection to ${this.url} lost`, 'closed');
    this.endOpenTurns(this.closing ? 'connection_closed' : 'connection_lost', error.message);
    // Only a session that got `ready` reconnects here; a failed attempt is retried by scheduleReconnect.
    if (this.closing || this.currentState !== 'open') return;
    const permanent = error instanceof EarshotServerError && PERMANENT_ERRORS.has(error.code);
    if (!this.reconnectOptions || permanent) this.finalClose(error);
    else this.scheduleReconnect(0, error);
  }

  private scheduleReconnect(attempt: number, error: EarshotConnectionError | EarshotServerError): void {
    const r = this.reconnectOptions!;
    if (r.maxAttempts > 0 && attempt >= r.maxAttempts) return this.finalClose(error);
    this.setState('reconnecting');
    // Full backoff with jitter, so clients dropped together do not return together.
    const ceiling = Math.min(r.maxDelayMs, r.initialDelayMs * 2 ** attempt);
    const delayMs = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.emit('reconnecting', { attempt: attempt + 1, delayMs, error });
    this.reconnectTimer = setTimeout(() => {
      this.openSocket().catch((err: EarshotConnectionError | EarshotServerError) => {
        if (!this.closing) this.scheduleReconnect(attempt + 1, err);
      });
    }, delayMs);
  }

  private finalClose(error: EarshotConnectionError | EarshotServerError | undefined): void {
    if (this.currentState === 'closed') return;
    clearTimeout(this.reconnectTimer);
    this.endOpenTurns('connection_closed', 'client closed');
    this.setState('closed');
    for (const queue of this.subscribers) queue.end();
    this.subscribers.clear();
    this.emit('closed', error);
  }

  private endOpenTurns(code: string, message: string): void {
    for (const handle of this.open.values()) handle.finish({ finish: 'error', error: { code, message } });
    this.open.clear();
    for (const handle of this.unheard.values()) handle.heard(undefined);
    this.unheard.clear();
  }

  private finishTurn(turnId: string | undefined, result: Omit<TurnResult, 'turnId' | 'text'>): void {
    if (turnId === undefined) return;
    this.open.get(turnId)?.finish(result);
    this.open.delete(turnId);
  }

  private onServerMessage(message: ServerMessage): void {
    // A newer server's message type fails validation and surfaces as 'malformed' instead.
    (this.handlers[message.type] as (m: ServerMessage) => void)(message);
    this.emit(message.type, message as never);
  }

  /** Client-side bookkeeping per server message type (listeners run after it). */
  private readonly handlers: { [K in ServerMessage['type']]: (message: MessageOf<K>) => void } = {
    ready: (m) => {
      this.readyMessage = m;
      this.setState('open');
    },
    vad: (m) => {
      this.speakingNow = m.state === 'speech';
    },
    turn: (m) => {
      const { type: _type, ...info } = m;
      const handle = Turn.create(info);
      this.open.set(m.turnId, handle);
      this.latest = handle;
      // The server transcribes exactly the turns with audio, when hello asked.
      if (this.hello.transcribe && info.audioMs > 0) this.unheard.set(m.turnId, handle);
      else handle.heard(undefined);
      for (const queue of this.subscribers) {
        if (queue.ended) this.subscribers.delete(queue);
        else queue.push(handle.turn);
      }
      this.emit('reply', handle.turn);
    },
    delta: (m) => {
      this.open.get(m.turnId)?.delta(m.text);
    },
    audio: (m) => {
      this.open.get(m.turnId)?.audio(m.data);
    },
    truncated: () => {},
    committed: () => this.commits.shift()?.(),
    transcript: (m) => {
      this.unheard.get(m.turnId)?.heard(m.error ? { text: m.text, error: m.error } : { text: m.text });
      this.unheard.delete(m.turnId);
    },
    done: (m) => this.finishTurn(m.turnId, { finish: m.finish, usage: m.usage }),
    error: (m) => this.finishTurn(m.turnId, { finish: 'error', error: { code: m.code, message: m.message } }),
    busy: (m) => this.finishTurn(m.turnId, { finish: 'error', error: { code: 'busy', message: `server busy, retry after ${m.retryAfterMs} ms` } }),
  };
}
