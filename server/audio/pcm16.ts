import { EarshotError } from '../../protocol/errors.js';
import { PCM_RATES } from '../../protocol/native.js';
import { downmixInterleaved, type Decoder } from './decoder.js';
import { SAMPLE_RATE, type Pcm16k } from './format.js';
import { Resampler } from './resample.js';

/**
 * PCM16 little-endian at 8/16/24/48 kHz, mono or interleaved stereo. A packet may end in the
 * middle of a sample (websocket messages need not align), so one odd byte is carried over.
 */
export class Pcm16Decoder implements Decoder {
  private readonly resampler: Resampler | undefined;
  private readonly channels: number;
  private scratch = new Float32Array(0);
  /** The view for the last sample count seen (a stream's packets usually hold the same), so a packet makes no view. */
  private view = this.scratch;
  private carry = -1;

  constructor(sampleRate: number, channels: 1 | 2 = 1) {
    if (!(PCM_RATES as readonly number[]).includes(sampleRate))
      throw new EarshotError('unsupported', `pcm16 sample rate ${sampleRate} is not supported (use ${PCM_RATES.join(', ')})`, { fatal: true });
    this.channels = channels;
    this.resampler = sampleRate === SAMPLE_RATE ? undefined : new Resampler(sampleRate, SAMPLE_RATE);
  }

  decode(packet: Uint8Array, start = 0, end = packet.length): Pcm16k {
    const carried = this.carry >= 0 ? 1 : 0;
    const bytes = end - start + carried;
    const frameBytes = 2 * this.channels;
    const usable = bytes - (bytes % frameBytes);
    const count = usable / 2;
    if (this.scratch.length < count) this.scratch = new Float32Array(Math.max(count, 2 * this.scratch.length));
    const out = this.scratch;
    let i = 0;
    // A byte carried from the last packet is the low half of the first sample.
    if (carried && count > 0) {
      const value = this.carry | (packet[start]! << 8);
      out[i++] = (value >= 0x8000 ? value - 0x10000 : value) / 32768;
    }
    for (let byteIndex = start + 2 * i - carried; i < count; i++, byteIndex += 2) {
      const value = packet[byteIndex]! | (packet[byteIndex + 1]! << 8);
      out[i] = (value >= 0x8000 ? value - 0x10000 : value) / 32768;
    }
    // A trailing partial sample frame (odd byte or half a stereo frame) waits for the next packet.
    const leftover = bytes - usable;
    if (leftover > 1) throw new EarshotError('bad_audio', 'stereo pcm16 packets must contain whole sample frames');
    this.carry = leftover === 1 ? packet[end - 1]! : -1;
    if (this.view.buffer !== out.buffer || this.view.length !== count) this.view = out.subarray(0, count);
    const mono = downmixInterleaved(this.view, this.channels);
    return this.resampler ? this.resampler.process(mono) : mono;
  }

  close(): void {}
}

/** Converts samples in [-1, 1] to PCM16 little-endian bytes (clients, fixtures, upstream WAV). */
export function floatToPcm16(samples: Float32Array): Int16Array {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]!));
    out[i] = s < 0 ? Math.round(s * 32768) : Math.round(s * 32767);
  }
  return out;
}

/** PCM16 samples to floats in [-1, 1) (spoken replies on their way to a resampler or an encoder). */
export function pcm16ToFloat(samples: Int16Array): Float32Array {
  const out = new Float32Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = samples[i]! / 32768;
  return out;
}
