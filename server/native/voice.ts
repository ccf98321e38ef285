/**
 * Spoken replies on /v1/stream, in the format `hello.voice` asked for: 20 ms Opus packets at 24
 * or 48 kHz, or PCM16 frames of 100 ms (PCM has no framing of its own, and fewer messages cost
 * less) at any PCM rate. One per session; when a turn's audio ends its last partial frame goes
 * out (Opus pads it with silence), and a turn cut off drops what is held.
 */
import { EarshotError } from '../../protocol/errors.js';
import { PCM_RATES, type VoiceRequest, type VoiceSettings } from '../../protocol/native.js';
import { OPUS_FRAME_MS, OpusEncoder, type OpusEncodeRate } from '../audio/opus-encoder.js';
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
  return { name: voiceName, codec: request.codec, sampleRate, frameMs: request.codec === 'opus' ? OPUS_FRAME_MS : PCM_FRAME_MS, raw: request.raw ?? false };
}

/** Frames of one turn's audio. */
interface Framer {
  push(pcm: Pcm24k): Uint8Array[];
  flush(): Uint8Array[];
  close(): void;
}

class OpusFramer implements Framer {
  private readonly encoder: OpusEncoder;

  constructor(rate: OpusEncodeRate) {
    this.encoder = new OpusEncoder(rate);
  }

  push(pcm: Pcm24k): Uint8Array[] {
    return this.encoder.encode(pcm);
  }

  flush(): Uint8Array[] {
    return this.encoder.flush();
  }

  close(): void {
    this.encoder.close();
  }
}

class PcmFramer implements Framer {
  private readonly encoder: OutputEncoder;
  private readonly frame: Uint8Array;
  private filled = 0;

  constructor(rate: number) {
    this.encoder = createOutputEncoder({ kind: 'pcm', rate });
    this.frame = new Uint8Array(((rate * PCM_FRAME_MS) / 1000) * 2);
  }

  push(pcm: Pcm24k): Uint8Array[] {
    return this.take(this.encoder.encode(pcm));
  }

  flush(): Uint8Array[] {
    const frames = this.take(this.encoder.flush());
    if (this.filled > 0) frames.push(this.frame.slice(0, this.filled));
    this.filled = 0;
    return frames;
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

export class NativeVoiceOut {
  readonly settings: VoiceSettings;
  private readonly send: (frame: Uint8Array) => void;
  private framer: Framer;

  constructor(settings: VoiceSettings, send: (frame: Uint8Array) => void) {
    this.settings = settings;
    this.send = send;
    this.framer = this.newFramer();
  }

  /** Audio of the turn being spoken; whole frames are sent at once. */
  push(pcm: Pcm24k): void {
    for (const frame of this.framer.push(pcm)) this.send(frame);
  }

  /** The turn's audio is complete: send what is left (before the turn's `done`). */
  flush(): void {
    for (const frame of this.framer.flush()) this.send(frame);
  }

  /** The turn was cut off: drop what is held, so nothing of it follows its `done`. */
  reset(): void {
    this.framer.close();
    this.framer = this.newFramer();
  }

  close(): void {
    this.framer.close();
  }

  private newFramer(): Framer {
    const { codec, sampleRate } = this.settings;
    return codec === 'opus' ? new OpusFramer(sampleRate as OpusEncodeRate) : new PcmFramer(sampleRate);
  }
}
