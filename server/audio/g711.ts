/**
 * G.711 μ-law and A-law at 8 kHz (telephony; the Realtime API's audio/pcmu and audio/pcma),
 * decoded by a 256-entry table and resampled to 16 kHz. Every byte is a valid sample, so
 * there is no framing to get wrong: any packet length works.
 */
import { SAMPLE_RATE, type Pcm16k } from './format.js';
import type { Decoder } from './decoder.js';
import { pcm16ToFloat } from './pcm16.js';
import { resample, Resampler } from './resample.js';

export const G711_RATE = 8000;
export type G711Law = 'ulaw' | 'alaw';

/** ITU-T G.711 μ-law byte → linear 16-bit value (the classic ulaw2linear). */
export function ulawToLinear(byte: number): number {
  const u = ~byte & 0xff;
  const exponent = (u >> 4) & 0x07;
  const magnitude = ((((u & 0x0f) << 3) + 0x84) << exponent) - 0x84;
  return u & 0x80 ? -magnitude : magnitude;
}

/** ITU-T G.711 A-law byte → linear 16-bit value (the classic alaw2linear). */
export function alawToLinear(byte: number): number {
  const a = byte ^ 0x55;
  const exponent = (a >> 4) & 0x07;
  const mantissa = (a & 0x0f) << 4;
  const magnitude = exponent === 0 ? mantissa + 8 : (mantissa + 0x108) << (exponent - 1);
  return a & 0x80 ? magnitude : -magnitude;
}

/** Linear 16-bit value → μ-law byte (the classic linear2ulaw, bias 0x84, clip 32635). */
export function linearToUlaw(sample: number): number {
  const sign = sample < 0 ? 0x80 : 0;
  const magnitude = Math.min(Math.abs(sample), 32635) + 0x84;
  let exponent = 7;
  for (let mask = 0x4000; (magnitude & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (magnitude >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

/** Linear 16-bit value → A-law byte (the classic linear2alaw). */
export function linearToAlaw(sample: number): number {
  const sign = sample >= 0 ? 0x80 : 0;
  const magnitude = Math.min(sample >= 0 ? sample : -sample - 1, 32767) >> 3;
  let exponent = 0;
  while (exponent < 7 && magnitude >= 32 << exponent) exponent++;
  const mantissa = exponent === 0 ? magnitude >> 1 : (magnitude >> exponent) & 0x0f;
  return (sign | (exponent << 4) | mantissa) ^ 0x55;
}

function table(law: G711Law): Float32Array {
  const toLinear = law === 'ulaw' ? ulawToLinear : alawToLinear;
  const out = new Float32Array(256);
  for (let b = 0; b < 256; b++) out[b] = toLinear(b) / 32768;
  return out;
}

const TABLES: Record<G711Law, Float32Array> = { ulaw: table('ulaw'), alaw: table('alaw') };

/** Decodes 8 kHz G.711 bytes into an 8 kHz float view (valid until the next call). */
class G711Expander {
  private readonly table: Float32Array;
  private scratch = new Float32Array(0);

  constructor(law: G711Law) {
    this.table = TABLES[law];
  }

  expand(bytes: Uint8Array, start = 0, end = bytes.length): Float32Array {
    const length = end - start;
    if (this.scratch.length < length) this.scratch = new Float32Array(Math.max(length, 2 * this.scratch.length));
    const out = this.scratch;
    const lookup = this.table;
    for (let i = 0; i < length; i++) out[i] = lookup[bytes[start + i]!]!;
    return out.subarray(0, length);
  }
}

export class G711Decoder implements Decoder {
  private readonly expander: G711Expander;
  private readonly resampler = new Resampler(G711_RATE, SAMPLE_RATE);

  constructor(law: G711Law) {
    this.expander = new G711Expander(law);
  }

  decode(bytes: Uint8Array, start = 0, end = bytes.length): Pcm16k {
    return this.resampler.process(this.expander.expand(bytes, start, end));
  }

  close(): void {}
}

/** A whole G.711 clip (e.g. a Realtime `input_audio` item) as 16 kHz samples, resampler tail included. */
export function decodeG711Clip(law: G711Law, bytes: Uint8Array): Pcm16k {
  return resample(new G711Expander(law).expand(bytes), G711_RATE, SAMPLE_RATE);
}

/** Spoken replies to G.711 (Realtime `audio/pcmu`, `audio/pcma` output): 24 kHz PCM16 in, 8 kHz bytes out, streaming. */
export class G711Encoder {
  private readonly toByte: (sample: number) => number;
  private readonly resampler = new Resampler(24_000, G711_RATE);

  constructor(law: G711Law) {
    this.toByte = law === 'ulaw' ? linearToUlaw : linearToAlaw;
  }

  encode(pcm24k: Int16Array): Uint8Array {
    return this.bytes(this.resampler.process(pcm16ToFloat(pcm24k)));
  }

  /** The resampler's held-back tail, at the end of a reply. */
  flush(): Uint8Array {
    return this.bytes(this.resampler.flush());
  }

  private bytes(samples: Float32Array): Uint8Array {
    const out = new Uint8Array(samples.length);
    for (let i = 0; i < samples.length; i++) out[i] = this.toByte(Math.max(-32768, Math.min(32767, Math.round(samples[i]! * 32768))));
    return out;
  }
}
