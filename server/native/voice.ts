/**
 * Spoken replies on /v1/stream, in the format `hello.voice` asked for: 20 ms Opus packets at 24
 * or 48 kHz (encoded off the event loop), or PCM16 frames of 100 ms (PCM has no framing of its
 * own, and fewer messages cost less) at any PCM rate. One per session; when a turn's audio ends
 * its last partial frame goes out (Opus pads it with silence), and a turn cut off drops what is
 * held.
 */
import { EarshotError } from '../../protocol/errors.js';
import { PCM_RATES, type VoiceRequest, type VoiceSettings } from '../../protocol/native.js';
import { OPUS_FRAME_MS, type OpusEncodeRate } from '../audio/opus-encoder.js';
import type { EncodingThread } from '../voice/encoding/threads.js';
import { createOutputEncoder, type OutputEncoder } from '../voice/output.js';
import { VOICE_SAMPLE_RATE, type Pcm24k } from '../voice/types.js';

const OPUS_OUT_RATES = [24_000, 48_000] as const;
const PCM_FRAME_MS = 100;

/** The voice a hello asks for, checked against what the server can do; throws `unsupported` naming what is. */
export function settleVoice(request: VoiceRequest, voiceName: string): VoiceSettings {
  const sampleRate = request.sampleRate ?? VOICE_SAMPLE_RATE;
  const rates: readonly number[] = request.codec === 'opus' ? OPUS_OUT_RATES : PCM_RATES;
  if (!rates.includes(sampleRate))
    throw new EarshotError('unsupported', `voice sampleRate ${sampleRate} is not supported for ${request.codec}; use one of ${rates.join(', ')}`, { fatal: true });
  return { name: voiceName, codec: request.codec, sampleRate, frameMs: request.codec === 'opus' ? OPUS_FRAME_MS : PCM_FRAME_MS, raw: request.raw ?? false, speed: request.speed ?? 1 };
}

/** Frames of one turn's audio; `done` gets the frames a call completed (at once, or when its thread answers). */
interface Framer {
  push(pcm: Pcm24k, done: (frames: Uint8Array[] | Error) => void): void;
  flush(done: (frames: Uint8Array[] | Error) => void): void;
  close(): void;
}

class PcmFramer implements Framer {
  private readonly encoder: OutputEncoder;
  private readonly frame: Uint8Array;
  private filled = 0;

  constructor(rate: number) {
    this.encoder = createOutputEncoder({ kind: 'pcm', rate });
    this.frame = new Uint8Array(((rate * PCM_FRAME_MS) / 1000) * 2);
  }

  push(pcm: Pcm24k, done: (frames: Uint8Array[]) => void): void {
    done(this.take(this.encoder.encode(pcm)));
  }

  flush(done: (frames: Uint8Array[]) => void): void {
    const frames = this.take(this.encoder.flush());
    if (this.filled > 0) frames.push(this.frame.slice(0, this.filled));
    this.filled = 0;
    done(frames);
  }

  close(): void {}

  private take(bytes: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    for (let at = 0; at < bytes.length; ) {
      const n = Math.min(bytes.length - at, this.frame.length - this.filled);
      this.frame.set(bytes.subarray(at, at + n), this.filled);
      this.filled += n;
      at += n;
      if (this.filled === this.frame.length) {
        frames.push(this.frame.slice());
        this.filled = 0;
      }
    }
    return frames;
  }
}

/** What the door sends while a voice is on, in order: its messages, and frames (of `turnId`) that may still be encoding. */
interface Outgoing {
  message?: Uint8Array;
  turnId?: string;
  frames?: Uint8Array[] | undefined;
  ready: boolean;
  /** Frames of a turn cut off: never sent. */
  dropped?: boolean;
}

export interface VoiceOutput {
  frame(frame: Uint8Array, turnId: string): void;
  message(bytes: Uint8Array): void;
  /** Encoding failed: the rest of the turn is not spoken. */
  failed(error: EarshotError): void;
}

/**
 * A session's spoken replies and the door's messages, in one order: Opus frames are encoded on
 * the voice stage's encoding thread (off the event loop), so a message sent after a turn's
 * audio (its `done`, the next `turn`) waits for the frames before it.
 */
export class NativeVoiceOut {
  readonly settings: VoiceSettings;
  private readonly out: VoiceOutput;
  private readonly encoding: EncodingThread;
  private framer: Framer;
  private readonly queue: Outgoing[] = [];

  constructor(settings: VoiceSettings, out: VoiceOutput, encoding: EncodingThread) {
    this.settings = settings;
    this.out = out;
    this.encoding = encoding;
    this.framer = this.newFramer();
  }

  /** Audio of the turn being spoken. */
  push(turnId: string, pcm: Pcm24k): void {
    this.encode(turnId, (done) => this.framer.push(pcm, done));
  }

  /** The turn's audio is complete: what is left goes before the turn's `done`. */
  flush(turnId: string): void {
    this.encode(turnId, (done) => this.framer.flush(done));
  }

  /** The turn was cut off: what is held or still encoding of it is dropped, so nothing of it follows its `done`. */
  reset(turnId: string): void {
    for (const entry of this.queue) if (entry.turnId === turnId) [entry.dropped, entry.ready] = [true, true];
    this.framer.close();
    this.framer = this.newFramer();
    this.pump();
  }

  /** A door message: sent after every frame already pushed. */
  message(bytes: Uint8Array): void {
    if (this.queue.length === 0) this.out.message(bytes);
    else this.queue.push({ message: bytes, ready: true });
  }

  close(): void {
    this.queue.length = 0;
    this.framer.close();
  }

  private encode(turnId: string, run: (done: (frames: Uint8Array[] | Error) => void) => void): void {
    const entry: Outgoing = { turnId, ready: false };
    this.queue.push(entry);
    run((frames) => {
      if (entry.ready) return;
      if (frames instanceof Error) {
        this.out.failed(new EarshotError('voice_error', `voice stage: Opus encoding failed (${frames.message})`));
        entry.dropped = true;
      } else entry.frames = frames;
      entry.ready = true;
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue[0]?.ready) {
      const entry = this.queue.shift()!;
      if (entry.message) this.out.message(entry.message);
      else if (!entry.dropped) for (const frame of entry.frames ?? []) this.out.frame(frame, entry.turnId!);
    }
  }

  private newFramer(): Framer {
    const { codec, sampleRate } = this.settings;
    return codec === 'opus' ? this.encoding.open(sampleRate as OpusEncodeRate) : new PcmFramer(sampleRate);
  }
}
