/**
 * Spoken replies on /v1/stream: the voice stage's 24 kHz PCM, resampled to the rate `hello.voice`
 * asked for and cut into frames of a fixed length (20 ms Opus packets; 100 ms PCM16 frames, as
 * PCM has no framing of its own and fewer messages cost less). One per session; a turn's last
 * partial frame is padded (Opus) or sent short (PCM16) when its audio ends.
 */
import { EarshotError } from '../../protocol/errors.js';
import { OPUS_RATES, PCM_RATES, type VoiceRequest, type VoiceSettings } from '../../protocol/native.js';
import { Resampler } from '../audio/resample.js';
import { VOICE_SAMPLE_RATE, type Pcm24k } from '../voice/types.js';

const FRAME_MS = { opus: 20, pcm16: 100 } as const;

/** Turns one frame of PCM16 samples into its payload. */
type FrameEncoder = { encode(frame: Int16Array): Uint8Array<ArrayBuffer>; close(): void };

function pcm16Encoder(): FrameEncoder {
  // Little-endian bytes: the Int16Array's own on every platform Node runs on.
  return {
    encode(frame) {
      const bytes = new Uint8Array(frame.byteLength);
      bytes.set(new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength));
      return bytes;
    },
    close() {},
  };
}

/** The voice a hello asks for, checked against what the server can do; throws `unsupported` naming what is. */
export function settleVoice(request: VoiceRequest, voiceName: string): VoiceSettings {
  const sampleRate = request.sampleRate ?? VOICE_SAMPLE_RATE;
  const rates: readonly number[] = request.codec === 'opus' ? OPUS_RATES : PCM_RATES;
  if (!rates.includes(sampleRate))
    throw new EarshotError('unsupported', `voice sampleRate ${sampleRate} is not supported for ${request.codec}; use one of ${rates.join(', ')}`, { fatal: true });
  return { name: voiceName, codec: request.codec, sampleRate, frameMs: FRAME_MS[request.codec], raw: request.raw ?? false };
}

export class NativeVoiceOut {
  readonly settings: VoiceSettings;
  private readonly send: (payload: Uint8Array<ArrayBuffer>) => void;
  private readonly resampler: Resampler | undefined;
  private readonly encoder: FrameEncoder;
  private readonly frame: Int16Array;
  private filled = 0;

  constructor(settings: VoiceSettings, encoder: FrameEncoder | undefined, send: (payload: Uint8Array<ArrayBuffer>) => void) {
    this.settings = settings;
    this.send = send;
    this.resampler = settings.sampleRate === VOICE_SAMPLE_RATE ? undefined : new Resampler(VOICE_SAMPLE_RATE, settings.sampleRate);
    this.encoder = encoder ?? pcm16Encoder();
    this.frame = new Int16Array((settings.sampleRate * settings.frameMs) / 1000);
  }

  /** Audio of the turn being spoken; whole frames are sent at once. */
  push(pcm: Pcm24k): void {
    if (!this.resampler) return this.append(pcm, 1);
    const floats = new Float32Array(pcm.length);
    for (let i = 0; i < pcm.length; i++) floats[i] = pcm[i]! / 32768;
    this.append(this.resampler.process(floats), 32768);
  }

  /** The turn's audio is complete: send what is left (before the turn's `done`). */
  flush(): void {
    if (this.resampler) this.append(this.resampler.flush(), 32768);
    if (this.filled === 0) return;
    if (this.settings.codec === 'opus') this.frame.fill(0, this.filled);
    else {
      this.send(this.encoder.encode(this.frame.subarray(0, this.filled)));
      this.filled = 0;
      return;
    }
    this.emit();
  }

  /** The turn was cut off: drop what is held, so nothing of it follows its `done`. */
  reset(): void {
    this.filled = 0;
    this.resampler?.flush();
  }

  close(): void {
    this.encoder.close();
  }

  private append(samples: ArrayLike<number>, scale: number): void {
    const frame = this.frame;
    for (let i = 0; i < samples.length; i++) {
      const s = scale === 1 ? samples[i]! : Math.max(-32768, Math.min(32767, Math.round(samples[i]! * scale)));
      frame[this.filled++] = s;
      if (this.filled === frame.length) this.emit();
    }
  }

  private emit(): void {
    this.send(this.encoder.encode(this.frame));
    this.filled = 0;
  }
}
