/**
 * The lean load generator: real-time Opus sessions on `ws` directly. The EarshotClient is the
 * library users get; a load of hundreds of sessions per core needs less: every WebSocket frame
 * (header, zero mask key as RFC 6455 allows, tag byte, Opus packet) is built once and shared by
 * all sessions, and written straight to the session's TCP socket after the `ws` handshake and
 * hello (ws's sender would build a header and a writev per frame); one timer drives every
 * session, and send times go into a preallocated ring.
 *
 * Frame-to-VAD lag: the server's `vad {state: 'silence', atMs}` is decided by the frame that
 * ends at stream time atMs (the segmenter's silenceMs-th unvoiced frame, or the frame that
 * reaches maxUtteranceMs), i.e. packet number atMs / 20 - 1. The lag is the time the message
 * is received minus the time that packet was sent: network both ways, queueing behind other
 * sessions' frames, decode, VAD and the reply, as the client sees it.
 */
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { decodeServerMessage, encodeClientMessage, encodeRawAudio } from '../protocol/codec.js';
import type { ServerMessage } from '../protocol/native.js';
import { Samples } from './stats.js';

export const FRAME_MS = 20;
/** Send times kept per session: 10 s of frames, longer than any decision delay we measure. */
const RING = 512;
const RING_MASK = RING - 1;
const TICK_MS = 2;

export interface Voice {
  /** Client WebSocket frames carrying raw audio messages, one per 20 ms Opus packet. */
  frames: Uint8Array[];
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

export function voiceOf(opusPackets: Uint8Array[]): Voice {
  return { frames: opusPackets.map((p) => wsFrame(encodeRawAudio(p))) };
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
      send(this.sent);
      this.sentAt[this.sent & RING_MASK] = performance.now();
      this.sent++;
    }
    return this.sent - before;
  }

  /** When the packet that decided a VAD event at stream time `atMs` was sent: the one ending there (NaN if not recent). */
  decidingPacketSentAt(atMs: number): number {
    const packet = atMs / FRAME_MS - 1;
    if (packet >= this.sent || this.sent - packet > RING) return NaN;
    return this.sentAt[packet & RING_MASK]!;
  }
}

export interface HelloVad {
  silenceMs?: number;
}

class LoadSession {
  readonly socket: WebSocket;
  private readonly tcp: Socket;
  private readonly fleet: Fleet;
  private readonly frames: Uint8Array[];
  private readonly offset: number;
  private pace = new PacedPackets(Infinity);
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
    this.offset = offset;
    socket.on('message', (data: Buffer) => this.onMessage(data));
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
    this.tcp.write(this.frames[(this.offset + index) % this.frames.length]!);
  };

  private onMessage(data: Buffer): void {
    const now = performance.now();
    const m = decodeServerMessage(data) as ServerMessage;
    switch (m.type) {
      case 'vad': {
        if (m.state !== 'silence') return;
        const sentAt = this.pace.decidingPacketSentAt(m.atMs);
        if (Number.isNaN(sentAt)) return;
        this.decisionSentAt = sentAt;
        this.fleet.lag.add(now - sentAt);
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
  readonly lag = new Samples();
  /** Deciding frame sent → first delta of that turn received. */
  readonly endToEnd = new Samples();
  readonly firstDeltaAt = new Map<string, number>();
  framesSent = 0;
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
  async add(url: string, count: number, voices: Voice[], vad: HelloVad = {}, parallel = 50): Promise<void> {
    const hello = encodeClientMessage({ type: 'hello', version: 1, codec: 'opus', sampleRate: 16000, ...(vad.silenceMs ? { vad: { silenceMs: vad.silenceMs } } : {}) } as never);
    let next = 0;
    const opened: LoadSession[] = [];
    const worker = async () => {
      while (next < count) {
        const i = next++;
        const voice = voices[(this.sessions.length + i) % voices.length]!;
        opened.push(await this.connect(url, hello, voice, Math.floor(Math.random() * voice.frames.length)));
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
    this.lag.reset();
    this.endToEnd.reset();
    this.firstDeltaAt.clear();
    this.framesSent = 0;
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
