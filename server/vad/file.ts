/** A whole recording through a segmenter: its speech as segments with stream times (REST verbose transcriptions). */
import { EarshotError } from '../../protocol/errors.js';
import type { Pcm16k } from '../audio/format.js';
import type { SegmentEvent, VadSegmenter } from './segmenter.js';

export interface SpeechSegment {
  startMs: number;
  endMs: number;
  audio: Pcm16k;
}

/** Samples fed before waiting for Silero's verdicts on them: well under what a segmenter holds pending (30 s). */
const BLOCK_SAMPLES = 16_000 * 10;

/**
 * `make` builds a segmenter (judged as --vad says) around the emit it is given; it is closed
 * here. The file goes in blocks, each judged before the next, so a long file never outruns
 * Silero. Speech still going at the end of the file ends there. A Silero failure is an
 * `engine_unavailable` error.
 */
export async function segmentFile(make: (emit: (event: SegmentEvent) => void) => VadSegmenter, samples: Pcm16k): Promise<SpeechSegment[]> {
  const events: SegmentEvent[] = [];
  const segmenter = make((event) => events.push(event));
  try {
    for (let at = 0; at < samples.length; at += BLOCK_SAMPLES) {
      segmenter.push(samples.subarray(at, at + BLOCK_SAMPLES));
      await new Promise<void>((resolve) => segmenter.settle(resolve));
    }
    await new Promise<void>((resolve) => segmenter.flush(resolve));
  } finally {
    segmenter.close();
  }
  const failed = events.find((e) => e.type === 'failed');
  if (failed) throw new EarshotError('engine_unavailable', `the file could not be segmented: ${failed.message}`);
  return events.flatMap((e) => (e.type === 'speech_stopped' ? [{ startMs: e.startMs, endMs: e.endMs, audio: e.audio }] : []));
}
