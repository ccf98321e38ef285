/**
 * The lean load generator: real-time Opus sessions on `ws` directly. The EarshotClient is the
 * library users get; a load of hundreds of sessions per core needs less: every WebSocket frame
 * (header, zero mask key as RFC 6455 allows, tag byte, Opus packet) is built once and shared by
 * all sessions, and written straight to the session's TCP socket after the `ws` handshake and
 * hello (ws's sender would build a header and a writev per frame); one timer drives every
 * session, and send times go into a preallocated ring.
 *
 * Two lags, both from the time taken just BEFORE the frame's write:
 * - Frame lag, dense: every PROBE_EVERY-th frame goes out with a WebSocket ping in the same TCP
 *   write, and the server's transport answers the ping once it has handled the frame before it
 *   (uWS and ws both process a read in order and pong without JS). On the event loop, with
 *   --vad webrtc, handling a frame is decode + VAD, so the lag is frame-to-VAD; with audio
 *   threads, shards or Silero it ends where the frame is handed on, and the decision lag below
 *   covers the rest. Ten samples per session per second cost the generator one pong event each.
 * - Decision lag, sparse (~0.3 per session per second): the server's `vad {state: 'silence',
 *   atMs}` is decided by the frame that ends at stream time atMs (the segmenter's silenceMs-th
 *   unvoiced frame, or the frame that reaches maxUtteranceMs), i.e. packet number atMs / 20 - 1;
 *   lag = message received - that packet sent, in every mode.
 */
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { decodeServerMessage, encodeClientMessage, encodeRawAudio, isRawAudio } from '../protocol/codec.js';
import type { ServerMessage } from '../protocol/native.js';
import { Samples } from './stats.js';

export const FRAME_MS = 20;
/** Send times kept per session: 10 s of frames, longer than any decision delay we measure. */
const RING = 512;
const RING_MASK = RING - 1;
const TICK_MS = 2;
/** One frame in this many carries a ping: 10 frame-lag samples per session per second. */
const PROBE_EVERY = 5;
/** A masked (zero key) WebSocket ping without payload. */
const PING = Uint8Array.of(0x89, 0x80, 0, 0, 0, 0);

export interface Voice {
  /** The sample rate hello declares (the packets' encoder rate). */
  sampleRate: number;
  /** Client WebSocket frames carrying raw audio messages, one per 20 ms Opus packet. */
  frames: Uint8Array[];
  /** The same frames, each followed by a ping in the same buffer (one write). */
  probes: Uint8Array[];
}

/** A masked binary WebSocket frame whose mask key is zero, so the payload goes as it is. */
export function wsFrame(payload: Uint8Array): Uint8Array {
  const extended = payload.length > 125;
  if (payload.length > 0xffff) throw new Error('frame too long for the load generator');
  const header = extended ? [0x82, 0x80 | 126, payload.length >> 8, payload.length & 0xff] : [0x82, 0x80 | payload.length];
  const frame = new Uint8Array(header.length + 4 + payload.length);
  frame.set(header);
  frame.set(payload, header.length + 4);
  return frame;
}

/** The TCP socket under a `ws` client: the generators write pre-built frames to it directly. */
export function tcpOf(socket: WebSocket): Socket {
  return (socket as unknown as { _socket: Socket })._socket;
}

export function voiceOf(opusPackets: Uint8Array[], sampleRate = 16_000): Voice {
  const frames = opusPackets.map((p) => wsFrame(encodeRawAudio(p)));
  const probes = frames.map((f) => {
    const probe = new Uint8Array(f.length + PING.length);
    probe.set(f);
    probe.set(PING, f.length);
    return probe;
  });
  return { sampleRate, frames, probes };
}

const epochNow = () => performance.timeOrigin + performance.now();

/**
 * A real-time stream's clock: which packets are due (20 ms each from `startAt`, so no drift),
 * and when each recent one was sent, to time the VAD decision it triggered.
 */
export class PacedPackets {
  private readonly sentAt = new Float64Array(RING);
  private sent = 0;

  constructor(private readonly startAt: number) {}

  /** Calls `send(index)` for every packet due by `now`; returns how many were sent. */
  sendDue(now: number, send: (index: number) => void): number {
    const before = this.sent;
    while (this.startAt + this.sent * FRAME_MS <= now) {
      // Taken before the write: the write itself is part of what the lag measures.
      this.sentAt[this.sent & RING_MASK] = performance.now();
      send(this.sent);
      this.sent++;
    }
    return this.sent - before;
  }

  /** When the packet that decided a VAD event at stream time `atMs` was sent: the one ending there (NaN if not recent). */
  decidingPacketSentAt(atMs: number): number {
    return this.sentAtOf(atMs / FRAME_MS - 1);
  }

  /** When packet `index` was sent (NaN if not sent or not recent). */
  sentAtOf(index: number): number {
    if (index < 0 || index >= this.sent || this.sent - index > RING) return NaN;
    return this.sentAt[index & RING_MASK]!;
  }
}

export interface HelloOptions {
  silenceMs?: number;
  /** hello.vad.bargeIn (the server's --barge-in when unset). */
  bargeIn?: boolean;
  /** Spoken replies (hello.voice), taken as raw binary frames: counted, never decoded. */
  voice?: { codec: 'opus' | 'pcm16'; sampleRate?: number };
}

class LoadSession {
  readonly socket: WebSocket;
  private readonly tcp: Socket;
  private readonly fleet: Fleet;
  private readonly frames: Uint8Array[];
  private readonly probes: Uint8Array[];
  private readonly offset: number;
  private pace = new PacedPackets(Infinity);
  /** Packets whose ping is unanswered, oldest first: pongs come back in order. */
  private readonly probed = new Float64Array(RING / PROBE_EVERY);
  private probeHead = 0;
  private probeCount = 0;
  private readonly phase = Math.floor(Math.random() * PROBE_EVERY);
  private decisionSentAt = NaN;
  private turnDecisionSentAt = NaN;
  private turnId = '';
  private sawDelta = true;
  streaming = false;
  open = true;

  constructor(socket: WebSocket, fleet: Fleet, voice: Voice, offset: number) {
    this.socket = socket;
    this.tcp = tcpOf(socket);
    this.fleet = fleet;
    this.frames = voice.frames;
    this.probes = voice.probes;
    this.offset = offset;
    socket.on('message', (data: Buffer) => this.onMessage(data));
    socket.on('pong', () => this.onPong());
    socket.on('close', () => {
      this.open = false;
      if (fleet.running) fleet.dropped++;
    });
  }

  start(at: number): void {
    this.pace = new PacedPackets(at);
    this.streaming = true;
  }

  /** Sends every frame that is due. */
  tick(now: number): void {
    this.fleet.framesSent += this.pace.sendDue(now, this.sendFrame);
  }

  /** Bound once: a tick allocates nothing. */
  private readonly sendFrame = (index: number): void => {
    const i = (this.offset + index) % this.frames.length;
    if (index % PROBE_EVERY !== this.phase || this.probeCount === this.probed.length) {
      this.tcp.write(this.frames[i]!);
      return;
    }
    this.probed[(this.probeHead + this.probeCount++) % this.probed.length] = index;
    this.tcp.write(this.probes[i]!);
  };

  private onPong(): void {
    if (this.probeCount === 0) return;
    const index = this.probed[this.probeHead]!;
    this.probeHead = (this.probeHead + 1) % this.probed.length;
    this.probeCount--;
    const sentAt = this.pace.sentAtOf(index);
    if (!Number.isNaN(sentAt)) this.fleet.frameLag.add(performance.now() - sentAt);
  }

  private onMessage(data: Buffer): void {
    // A raw spoken-reply frame (tag byte, then the packet).
    if (isRawAudio(data)) {
      this.fleet.voiceFrames++;
      return;
    }
    const now = performance.now();
    const m = decodeServerMessage(data) as ServerMessage;
    switch (m.type) {
      case 'vad': {
        if (m.state !== 'silence') return;
        const sentAt = this.pace.decidingPacketSentAt(m.atMs);
        if (Number.isNaN(sentAt)) return;
        this.decisionSentAt = sentAt;
        this.fleet.decisionLag.add(now - sentAt);
        return;
      }
      case 'turn':
        this.turnId = m.turnId;
        this.turnDecisionSentAt = this.decisionSentAt;
        this.decisionSentAt = NaN;
        this.sawDelta = false;
        this.fleet.turns++;
        return;
      case 'delta':
        if (this.sawDelta || m.turnId !== this.turnId) return;
        this.sawDelta = true;
        this.fleet.firstDeltaAt.set(m.turnId, epochNow());
        if (!Number.isNaN(this.turnDecisionSentAt)) this.fleet.endToEnd.add(now - this.turnDecisionSentAt);
        return;
      case 'error':
      case 'busy':
        this.fleet.errors++;
        return;
      default:
    }
  }
}

/** A set of real-time sessions driven by one timer. */
export class Fleet {
  /** Frame sent → its ping answered (dense), and deciding frame sent → `vad silence` received (sparse). */
  readonly frameLag = new Samples();
  readonly decisionLag = new Samples();
  /** Deciding frame sent → first delta of that turn received. */
  readonly endToEnd = new Samples();
  readonly firstDeltaAt = new Map<string, number>();
  framesSent = 0;
  /** Spoken-reply frames received (sessions that asked for a voice). */
  voiceFrames = 0;
  turns = 0;
  errors = 0;
  dropped = 0;
  running = true;
  private readonly sessions: LoadSession[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.timer = setInterval(() => {
      const now = performance.now();
      for (const s of this.sessions) if (s.streaming && s.open) s.tick(now);
    }, TICK_MS);
  }

  get size(): number {
    return this.sessions.length;
  }

  /** Opens `count` sessions (at most `parallel` handshakes at once); each starts at a random point of its voice and a random phase. */
  async add(url: string, count: number, voices: Voice[], options: HelloOptions = {}, parallel = 50): Promise<void> {
    const hello = (sampleRate: number) =>
      encodeClientMessage({
        type: 'hello',
        version: 1,
        codec: 'opus',
        sampleRate,
        ...(options.silenceMs !== undefined || options.bargeIn !== undefined
          ? { vad: { ...(options.silenceMs ? { silenceMs: options.silenceMs } : {}), ...(options.bargeIn !== undefined ? { bargeIn: options.bargeIn } : {}) } }
          : {}),
        ...(options.voice ? { voice: { ...options.voice, raw: true } } : {}),
      } as never);
    let next = 0;
    const opened: LoadSession[] = [];
    const worker = async () => {
      while (next < count) {
        const i = next++;
        const voice = voices[(this.sessions.length + i) % voices.length]!;
        opened.push(await this.connect(url, hello(voice.sampleRate), voice, Math.floor(Math.random() * voice.frames.length)));
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
    const base = performance.now();
    for (const s of opened) {
      s.start(base + Math.random() * FRAME_MS);
      this.sessions.push(s);
    }
  }

  private async connect(url: string, hello: Uint8Array, voice: Voice, offset: number): Promise<LoadSession> {
    const socket = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    const ready = new Promise<void>((resolve, reject) => {
      const onMessage = (data: Buffer) => {
        const m = decodeServerMessage(data);
        if (m.type === 'ready') {
          socket.off('message', onMessage);
          resolve();
        } else if (m.type === 'error') reject(new Error(`hello refused: ${m.code} ${m.message}`));
      };
      socket.on('message', onMessage);
      socket.once('close', () => reject(new Error('closed before ready')));
    });
    socket.send(hello);
    await ready;
    return new LoadSession(socket, this, voice, offset);
  }

  /** Lag, end-to-end and counters start afresh (a new measuring window). */
  resetWindow(): void {
    this.frameLag.reset();
    this.decisionLag.reset();
    this.endToEnd.reset();
    this.firstDeltaAt.clear();
    this.framesSent = 0;
    this.voiceFrames = 0;
    this.turns = 0;
    this.errors = 0;
  }

  get open(): number {
    let n = 0;
    for (const s of this.sessions) if (s.open) n++;
    return n;
  }

  close(): void {
    this.running = false;
    clearInterval(this.timer);
    // Abrupt on purpose: a server that fell behind would take long to read a backlog up to a close frame.
    for (const s of this.sessions) s.socket.terminate();
  }
}
