/** A whole recording through a segmenter: its speech as segments with stream times (REST verbose transcriptions). */
import type { Pcm16k } from '../audio/format.js';
import type { SegmentEvent, Segmenter } from './segmenter.js';

export interface SpeechSegment {
  startMs: number;
  endMs: number;
  audio: Pcm16k;
}

/** Closes the segmenter. Speech still going at the end of the file ends there. */
export function segmentFile(segmenter: Segmenter, samples: Pcm16k): SpeechSegment[] {
  const events: SegmentEvent[] = [];
  try {
    segmenter.push(samples, events);
    segmenter.flush(events);
  } finally {
    segmenter.close();
  }
  return events.flatMap((e) => (e.type === 'speech_stopped' ? [{ startMs: e.startMs, endMs: e.endMs, audio: e.audio }] : []));
}
