/** What a BatchConfirmer and its Silero thread share: one batch at a time, in shared memory. */

/** Silero VAD v4 at 16 kHz judges 512-sample (32 ms) chunks. */
export const CHUNK_SAMPLES = 512;
/** Floats in one stream's h (or c): 2 layers of 64. */
export const STATE_SIZE = 128;

export interface BatchBuffers {
  /** [maxBatch, 512] float32 chunks. */
  input: SharedArrayBuffer;
  /** int32 stream id per row. */
  ids: SharedArrayBuffer;
  /** uint8 per row: 1 starts the stream's recurrent state afresh. */
  resets: SharedArrayBuffer;
  /** float32 speech probability per row, written by the thread. */
  probabilities: SharedArrayBuffer;
}

export function batchBuffers(maxBatch: number): BatchBuffers {
  return {
    input: new SharedArrayBuffer(maxBatch * CHUNK_SAMPLES * 4),
    ids: new SharedArrayBuffer(maxBatch * 4),
    resets: new SharedArrayBuffer(maxBatch),
    probabilities: new SharedArrayBuffer(maxBatch * 4),
  };
}

/** Confirmer → thread: run the first `count` rows; forget the state of `closed` streams first. */
export interface ToSilero {
  count: number;
  closed: number[];
}

export type FromSilero = { type: 'ready' } | { type: 'done' } | { type: 'failed'; message: string };
