/**
 * Spoken audio in a client's format: the voice stage's 24 kHz PCM as pcm16 (little-endian) at
 * the format's rate, or as G.711 bytes at 8 kHz (Realtime output deltas, native PCM16 frames).
 * One per reply: resamplers carry state across chunks.
 */
import { G711Encoder } from '../audio/g711.js';
import { floatToPcm16, pcm16ToFloat } from '../audio/pcm16.js';
import { Resampler } from '../audio/resample.js';
import { VOICE_SAMPLE_RATE, type Pcm24k } from './types.js';

export type OutputFormat = { kind: 'pcm'; rate: number } | { kind: 'ulaw' } | { kind: 'alaw' };

export interface OutputEncoder {
  encode(pcm: Pcm24k): Uint8Array;
  /** What is still held back, at the end of the reply's audio. */
  flush(): Uint8Array;
}

class PcmOut implements OutputEncoder {
  private readonly resampler: Resampler | undefined;

  constructor(rate: number) {
    this.resampler = rate === VOICE_SAMPLE_RATE ? undefined : new Resampler(VOICE_SAMPLE_RATE, rate);
  }

  encode(pcm: Pcm24k): Uint8Array {
    const out = this.resampler ? floatToPcm16(this.resampler.process(pcm16ToFloat(pcm))) : pcm;
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }

  flush(): Uint8Array {
    if (!this.resampler) return new Uint8Array(0);
    const out = floatToPcm16(this.resampler.flush());
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }
}

export function createOutputEncoder(format: OutputFormat): OutputEncoder {
  return format.kind === 'pcm' ? new PcmOut(format.rate) : new G711Encoder(format.kind);
}
