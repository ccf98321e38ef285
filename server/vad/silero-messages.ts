/** What a BatchConfirmer and its Silero thread share: one batch at a time, in shared memory. */

/** Silero VAD (v4 and v5) at 16 kHz judges 512-sample (32 ms) chunks. */
export const CHUNK_SAMPLES = 512;
/**
 * A message runs up to this many calls in a row, step s judging each stream's (s+1)-th waiting
 * chunk, so a stream behind by several chunks (a burst, a slow tick) catches up in one round trip.
 */
export const MAX_STEPS = 8;

export interface BatchBuffers {
  /** [maxBatch * MAX_STEPS, 512] float32 chunks, step after step. */
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
    input: new SharedArrayBuffer(maxBatch * MAX_STEPS * CHUNK_SAMPLES * 4),
    ids: new SharedArrayBuffer(maxBatch * MAX_STEPS * 4),
    resets: new SharedArrayBuffer(maxBatch * MAX_STEPS),
    probabilities: new SharedArrayBuffer(maxBatch * MAX_STEPS * 4),
  };
}

/** Confirmer → thread: one call per step over that step's rows (rows laid out step after step); forget the state of `closed` streams first. */
export interface ToSilero {
  steps: number[];
  closed: number[];
  /** Finish the call in progress, release the model and end the thread (terminating it mid-call aborts the process in onnxruntime). */
  stop?: true;
  /** Tests only: the next call fails with this message (BatchConfirmer.failNextCall). */
  fault?: string;
}

export type FromSilero = { type: 'ready' } | { type: 'done' } | { type: 'failed'; message: string };
