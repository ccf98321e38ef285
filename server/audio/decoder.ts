import type { Pcm16k } from './format.js';

/**
 * Turns one packet of a client's codec into 16 kHz mono samples.
 * The returned view is only valid until the next `decode` call: decoders reuse one scratch
 * buffer per stream so the per-frame path allocates nothing. The packet is `bytes[start, end)`,
 * so a caller holding it inside a larger message (the native door's tag byte, an audio
 * thread's ring) makes no view per packet.
 */
export interface Decoder {
  decode(bytes: Uint8Array, start?: number, end?: number): Pcm16k;
  close(): void;
}

/** Downmixes interleaved stereo in place into the first half of `samples`; returns the mono view. */
export function downmixInterleaved(samples: Float32Array, channels: number): Float32Array {
  if (channels === 1) return samples;
  const frames = samples.length / channels;
  for (let i = 0; i < frames; i++) samples[i] = (samples[2 * i]! + samples[2 * i + 1]!) * 0.5;
  return samples.subarray(0, frames);
}
