/** A whole recording through a segmenter: its speech as segments with stream times (REST verbose transcriptions). */
import type { Pcm16k } from '../audio/format.js';
import type { SegmentEvent, Segmenter } from './segmenter.js';

export interface SpeechSegment {
  startMs: number;
  endMs: number;
  audio: Pcm16k;
}

/**
 * `make` builds a segmenter that judges synchronously (WebRTC VAD: createSegmenter) around the
 * emit it is given; it is closed here. Speech still going at the end of the file ends there.
 */
export function segmentFile(make: (emit: (event: SegmentEvent) => void) => Segmenter, samples: Pcm16k): SpeechSegment[] {
  const events: SegmentEvent[] = [];
  const segmenter = make((event) => events.push(event));
  try {
    segmenter.push(samples);
    segmenter.flush();
  } finally {
    segmenter.close();
  }
  return events.flatMap((e) => (e.type === 'speech_stopped' ? [{ startMs: e.startMs, endMs: e.endMs, audio: e.audio }] : []));
}
