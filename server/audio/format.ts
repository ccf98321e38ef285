/** The one audio format inside the server: every decoder produces it, the VAD and the engines consume it. */

export const SAMPLE_RATE = 16_000;

/** Mono SAMPLE_RATE samples in [-1, 1]. */
export type Pcm16k = Float32Array;
