/**
 * A listening shard's side of its sessions' audio: once the main thread attaches a stream to a
 * socket, that socket's audio is decoded and segmented here (AudioStreams, as on an audio thread)
 * and never crosses; only segment events, flush answers and errors go to the main thread. Audio is
 * a native session's frames, or a Realtime session's `input_audio_buffer.append` events.
 *
 * Order: a socket's other messages still cross, and what the main thread does with them (a
 * commit's flush, a Realtime clear or session.update that rebuilds the stream) must land between
 * the same frames it came between. So after forwarding one, the shard holds that socket's later
 * messages, audio or not, until the main thread answers `resume`, then takes them up in order; the
 * same hold covers the frames that crossed before the stream was attached (the main thread sends
 * them back). A socket whose stream the main thread detached (Realtime manual turns) has its
 * messages cross as they come.
 */
import { decodeClientMessage, isRawAudio } from '../../protocol/codec.js';
import { parseClientEvent } from '../../protocol/realtime.js';
import { SAMPLE_RATE } from '../audio/format.js';
import type { StreamSpec, ThreadEvent } from '../offload/messages.js';
import { AudioStreams } from '../offload/streams.js';
import type { Logger } from '../observability/log.js';
import { BatchConfirmer, type BatchConfirmerOptions, type Confirmer } from '../vad/confirmer.js';

/** How often the shard tells the main thread which sockets sent audio (idle limits) and how many frames (/metrics). */
const REPORT_MS = 100;

/** Only an append can carry this, so other events skip the full parse (an append spelled with escapes crosses, and the main thread takes it). */
const APPEND_TYPE = '"input_audio_buffer.append"';

export interface HeardReport {
  ids: number[];
  frames: number[];
}

interface Socket {
  /** Whether the main thread has a stream attached (audio stays here). */
  attached: boolean;
  realtime: boolean;
  /** Messages forwarded (or the attach's hold) not yet answered with `resume`. */
  unanswered: number;
  /** What came while `unanswered`, copied, in order. */
  held: Array<{ data: Uint8Array; isBinary: boolean }>;
  /** Frames since the last report. */
  frames: number;
  /** Where the current stream starts on the socket's timeline (ms, rounded as the main thread's Realtime input does): its events are shifted by it. */
  offsetMs: number;
  /** Samples the socket's earlier streams decoded. */
  samples: number;
}

export class ShardAudio {
  private readonly sockets = new Map<number, Socket>();
  private readonly streams: AudioStreams;
  private readonly text = new TextDecoder('utf-8', { fatal: true });
  private confirmer: Promise<Confirmer | undefined> | undefined;
  private heard: number[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly silero: BatchConfirmerOptions | undefined,
    private readonly maxMessageBytes: number,
    private readonly ports: {
      /** Carries a message to the main thread; `hold`: it answers with resume(id). */
      forward(id: number, data: Uint8Array, isBinary: boolean, hold: boolean): void;
      event(event: ThreadEvent): void;
      heard(report: HeardReport): void;
    },
    private readonly logger: Logger,
  ) {
    // Silero starts with the first stream that needs it: a shard of webrtc or manual sessions never loads it.
    this.streams = new AudioStreams(() => (this.confirmer ??= this.silero ? BatchConfirmer.start(this.silero, this.logger) : Promise.resolve(undefined)), (event) => {
      this.report();
      this.ports.event(this.shift(event));
    });
    this.timer = setInterval(() => this.report(), REPORT_MS);
  }

  /** Starts decoding socket `id`'s audio here (again, after a detach or in place of its stream); the caller posts the hold this takes to. */
  attach(id: number, spec: StreamSpec): void {
    let socket = this.sockets.get(id);
    if (!socket) this.sockets.set(id, (socket = { attached: false, realtime: false, unanswered: 0, held: [], frames: 0, offsetMs: 0, samples: 0 }));
    // A new stream replaces the one attached (a Realtime clear or format change).
    else if (socket.attached) this.detach(id);
    socket.attached = true;
    socket.realtime = spec.framing === 'realtime';
    socket.offsetMs = Math.round((socket.samples * 1000) / SAMPLE_RATE);
    socket.unanswered++;
    void this.streams.open(id, spec);
  }

  /** One message of socket `id` (`data` is only valid during the call): its audio stays here, the rest is forwarded. */
  message(id: number, data: Uint8Array, isBinary: boolean): void {
    const socket = this.sockets.get(id);
    if (!socket) return this.ports.forward(id, data, isBinary, false);
    if (socket.unanswered > 0) socket.held.push({ data: data.slice(), isBinary });
    else this.take(id, socket, data, isBinary);
  }

  /** The main thread handled a held message: once none is left unanswered, what was held behind it goes on, in order. */
  resume(id: number): void {
    const socket = this.sockets.get(id);
    if (!socket || --socket.unanswered > 0) return;
    let taken = 0;
    while (taken < socket.held.length && socket.unanswered === 0) {
      const { data, isBinary } = socket.held[taken++]!;
      this.take(id, socket, data, isBinary);
    }
    socket.held.splice(0, taken);
  }

  /** Audio that crossed to the main thread before the stream was attached, sent back in order. */
  push(id: number, packet: Uint8Array): void {
    this.streams.push(id, packet);
  }

  flush(id: number): void {
    this.streams.flush(id);
  }

  /** The main thread closed the socket's stream: its audio crosses again (the socket stays known, so a new attach keeps its timeline). */
  detach(id: number): void {
    const socket = this.sockets.get(id);
    if (!socket) return;
    socket.attached = false;
    socket.samples += this.streams.decoded(id);
    this.streams.close(id);
  }

  /** The socket closed. */
  forget(id: number): void {
    if (this.sockets.get(id)?.frames) this.report();
    this.sockets.delete(id);
    this.streams.close(id);
  }

  /** Tests only: the Silero thread's next call fails (it must have started). */
  async failSilero(message: string): Promise<void> {
    ((await this.confirmer) as BatchConfirmer | undefined)?.failNextCall(message);
  }

  /** Every stream closed and Silero's thread ended (it must release its model before this thread ends). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.report();
    this.sockets.clear();
    this.streams.closeAll();
    await (await this.confirmer?.catch(() => undefined))?.close();
  }

  /** A message of a socket not on hold: audio into its stream, anything else forwarded with a hold. */
  private take(id: number, socket: Socket, data: Uint8Array, isBinary: boolean): void {
    if (!socket.attached) return this.ports.forward(id, data, isBinary, false);
    if (data.length <= this.maxMessageBytes) {
      if (socket.realtime) {
        const audio = isBinary ? undefined : this.appended(data);
        if (audio) return this.audio(id, socket, audio, 0);
      } else if (isBinary) {
        // A raw frame is decoded in place, past its tag byte: no view per frame.
        if (isRawAudio(data)) return this.audio(id, socket, data, 1);
        const packet = msgpackAudio(data);
        if (packet) return this.audio(id, socket, packet, 0);
      }
    }
    socket.unanswered++;
    this.ports.forward(id, data, isBinary, true);
  }

  private audio(id: number, socket: Socket, bytes: Uint8Array, start: number): void {
    if (socket.frames++ === 0) this.heard.push(id);
    this.streams.push(id, bytes, start, bytes.length);
  }

  /** The audio of a valid `input_audio_buffer.append`, or undefined for anything else (the main thread answers bad events in the door's shape). */
  private appended(data: Uint8Array): Buffer | undefined {
    let text: string;
    try {
      text = this.text.decode(data);
    } catch {
      return undefined;
    }
    if (!text.includes(APPEND_TYPE)) return undefined;
    const parsed = parseClientEvent(text);
    return parsed.ok && parsed.event.type === 'input_audio_buffer.append' ? Buffer.from(parsed.event.audio, 'base64') : undefined;
  }

  /** A stream's event on its socket's timeline. */
  private shift(event: ThreadEvent): ThreadEvent {
    const offsetMs = this.sockets.get(event.stream)?.offsetMs ?? 0;
    if (offsetMs === 0) return event;
    if (event.type === 'speech_started') return { ...event, atMs: event.atMs + offsetMs };
    if (event.type === 'speech_stopped') return { ...event, atMs: event.atMs + offsetMs, startMs: event.startMs + offsetMs, endMs: event.endMs + offsetMs };
    return event;
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
    this.ports.heard({ ids, frames });
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
