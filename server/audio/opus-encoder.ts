/**
 * Opus encoding for spoken replies: 24 kHz PCM16 in, 20 ms Opus packets out, through opusscript
 * (libopus 1.4 in WASM, safe in worker threads; measured 214 µs per frame at complexity 5,
 * 370-390 at 10, so 5 keeps voice quality at about half the CPU). Audio that does not fill a
 * frame is carried to the next call; `flush` pads the last frame with silence.
 */
import OpusScript from 'opusscript';
import { floatToPcm16, pcm16ToFloat } from './pcm16.js';
import { Resampler } from './resample.js';

export const OPUS_FRAME_MS = 20;
export type OpusEncodeRate = 24_000 | 48_000;
const OPUS_SET_COMPLEXITY = 4010;
const COMPLEXITY = 5;
const BITRATE = 32_000;

export class OpusEncoder {
  readonly sampleRate: OpusEncodeRate;
  private readonly encoder: OpusScript;
  private readonly upsampler: Resampler | undefined;
  private readonly frame: Int16Array;
  private readonly frameBytes: Buffer;
  private filled = 0;

  /** `sampleRate`: the rate the encoder runs at (input is always 24 kHz; 48 kHz upsamples first). */
  constructor(sampleRate: OpusEncodeRate = 24_000) {
    this.sampleRate = sampleRate;
    this.encoder = new OpusScript(sampleRate, 1, OpusScript.Application.VOIP);
    this.encoder.setBitrate(BITRATE);
    this.encoder.encoderCTL(OPUS_SET_COMPLEXITY, COMPLEXITY);
    this.upsampler = sampleRate === 24_000 ? undefined : new Resampler(24_000, sampleRate);
    this.frame = new Int16Array((sampleRate * OPUS_FRAME_MS) / 1000);
    this.frameBytes = Buffer.from(this.frame.buffer);
  }

  /** Samples (at the encoder's rate) per packet. */
  get frameSamples(): number {
    return this.frame.length;
  }

  /** 24 kHz samples in; the packets they complete out. */
  encode(pcm24k: Int16Array): Uint8Array[] {
    if (!this.upsampler) return this.take(pcm24k);
    return this.take(floatToPcm16(this.upsampler.process(pcm16ToFloat(pcm24k))));
  }

  /** The last partial frame, padded with silence (no packet when nothing is pending). */
  flush(): Uint8Array[] {
    const packets = this.upsampler ? this.take(floatToPcm16(this.upsampler.flush())) : [];
    if (this.filled > 0) {
      this.frame.fill(0, this.filled);
      this.filled = 0;
      packets.push(this.packet());
    }
    return packets;
  }

  close(): void {
    this.encoder.delete();
  }

  private take(samples: Int16Array): Uint8Array[] {
    const packets: Uint8Array[] = [];
    let at = 0;
    while (at < samples.length) {
      const n = Math.min(this.frame.length - this.filled, samples.length - at);
      this.frame.set(samples.subarray(at, at + n), this.filled);
      this.filled += n;
      at += n;
      if (this.filled === this.frame.length) {
        this.filled = 0;
        packets.push(this.packet());
      }
    }
    return packets;
  }

  private packet(): Uint8Array {
    return new Uint8Array(this.encoder.encode(this.frameBytes, this.frame.length));
  }
}
