/** Messages between the voice stage's encoding thread (Opus, MP3) and the main thread. */
import type { OpusEncodeRate } from '../../audio/opus-encoder.js';

export type EncodingJob =
  | { type: 'open'; stream: number; rate: OpusEncodeRate }
  /** An MP3 stream (REST speech): each answer holds the bytes LAME completed, as one chunk. */
  | { type: 'open'; stream: number; mp3: true }
  | { type: 'encode'; stream: number; pcm: Int16Array }
  | { type: 'flush'; stream: number }
  | { type: 'close'; stream: number }
  | { type: 'stop' };

/** The packets one encode or flush completed, in the order the jobs were posted. */
export type EncodingResult = { stream: number; packets: Uint8Array[] } | { stream: number; error: string };
