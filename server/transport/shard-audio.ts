/**
 * A listening shard's side of its sessions' audio: once the main thread attaches a stream to a
 * socket, that socket's audio frames are decoded and segmented here (AudioStreams, as on an audio
 * thread) and never cross; only segment events, flush answers and errors go to the main thread.
 *
 * Order: a socket's other messages still cross, and what the main thread does with them (a
 * commit's flush) must land between the same frames it came between. So after forwarding one,
 * the shard holds that socket's frames until the main thread answers `resume`; the same hold
 * covers the frames that crossed before the stream was attached (the main thread sends them back).
 */
import { decodeClientMessage, isRawAudio } from '../../protocol/codec.js';
import type { StreamSpec, ThreadEvent } from '../offload/messages.js';
import { AudioStreams } from '../offload/streams.js';
import { BatchConfirmer, type BatchConfirmerOptions, type Confirmer } from '../vad/confirmer.js';

/** How often the shard tells the main thread which sockets sent audio (idle limits) and how many frames (/metrics). */
const REPORT_MS = 100;

export interface HeardReport {
  ids: number[];
  frames: number[];
}

interface Socket {
  /** Messages forwarded (or the attach's hold) not yet answered with `resume`. */
  unanswered: number;
  held: Uint8Array[];
  /** Frames since the last report. */
  frames: number;
}

export class ShardAudio {
  private readonly sockets = new Map<number, Socket>();
  private readonly streams: AudioStreams;
  private confirmer: Promise<Confirmer | undefined> | undefined;
  private heard: number[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly silero: BatchConfirmerOptions | undefined,
    private readonly maxMessageBytes: number,
    private readonly postEvent: (event: ThreadEvent) => void,
    private readonly postHeard: (report: HeardReport) => void,
  ) {
    // Silero starts with the first stream that needs it: a shard of webrtc or manual sessions never loads it.
    this.streams = new AudioStreams(() => (this.confirmer ??= this.silero ? BatchConfirmer.start(this.silero) : Promise.resolve(undefined)), (event) => {
      this.report();
      this.postEvent(event);
    });
    this.timer = setInterval(() => this.report(), REPORT_MS);
  }

  /** Starts decoding socket `id`'s audio here; the caller posts the hold this returns to. */
  attach(id: number, spec: StreamSpec): void {
    this.sockets.set(id, { unanswered: 1, held: [], frames: 0 });
    void this.streams.open(id, spec);
  }

  /** True when the frame was audio of an attached socket and stays here; otherwise the caller forwards it, held when `held(id)`. */
  message(id: number, data: Uint8Array, isBinary: boolean): boolean {
    const socket = this.sockets.get(id);
    if (!socket) return false;
    if (isBinary && data.length <= this.maxMessageBytes) {
      // A raw frame is decoded in place, past its tag byte: no view per frame.
      if (isRawAudio(data)) return this.audio(id, socket, data, 1);
      const packet = msgpackAudio(data);
      if (packet) return this.audio(id, socket, packet, 0);
    }
    socket.unanswered++;
    return false;
  }

  /** Whether messages of socket `id` cross with a hold (the main thread answers each with `resume`). */
  held(id: number): boolean {
    return this.sockets.has(id);
  }

  /** The main thread handled a held message: once none is left unanswered, the frames held behind it go on. */
  resume(id: number): void {
    const socket = this.sockets.get(id);
    if (!socket || --socket.unanswered > 0) return;
    for (const packet of socket.held.splice(0)) this.streams.push(id, packet);
  }

  /** Audio that crossed to the main thread before the stream was attached, sent back in order. */
  push(id: number, packet: Uint8Array): void {
    this.streams.push(id, packet);
  }

  flush(id: number): void {
    this.streams.flush(id);
  }

  detach(id: number): void {
    if (this.sockets.get(id)?.frames) this.report();
    this.sockets.delete(id);
    this.streams.close(id);
  }

  /** Every stream closed and Silero's thread ended (it must release its model before this thread ends). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.report();
    this.sockets.clear();
    this.streams.closeAll();
    await (await this.confirmer?.catch(() => undefined))?.close();
  }

  private audio(id: number, socket: Socket, bytes: Uint8Array, start: number): true {
    if (socket.frames++ === 0) this.heard.push(id);
    if (socket.unanswered > 0) socket.held.push(bytes.slice(start));
    else this.streams.push(id, bytes, start, bytes.length);
    return true;
  }

  private report(): void {
    if (this.heard.length === 0) return;
    const ids = this.heard;
    this.heard = [];
    const frames = ids.map((id) => {
      const socket = this.sockets.get(id);
      const count = socket?.frames ?? 0;
      if (socket) socket.frames = 0;
      return count;
    });
    this.postHeard({ ids, frames });
  }
}

/** The codec payload of a msgpack `audio` message, or undefined for anything else. */
function msgpackAudio(data: Uint8Array): Uint8Array | undefined {
  try {
    const message = decodeClientMessage(data);
    return message.type === 'audio' ? message.data : undefined;
  } catch {
    // The main thread answers bad messages in the protocol's shape.
    return undefined;
  }
}
