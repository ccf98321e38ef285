import type { AudioInputSpec } from '../audio/select.js';
import type { SegmenterSettings } from '../vad/segmenter.js';

/** What opens a stream in an audio thread (sent through the ring, so it is ordered with the frames). */
export interface StreamSpec {
  audio: AudioInputSpec;
  aggressiveness: number;
  segmenter: SegmenterSettings;
}

/** Audio thread → event-loop thread. Rare: one per VAD transition or bad packet, never per frame. */
export type ThreadEvent =
  | { stream: number; type: 'speech_started'; atMs: number }
  | { stream: number; type: 'speech_stopped'; atMs: number; startMs: number; endMs: number; reason: 'silence' | 'max_length' | 'commit'; audio: Float32Array }
  | { stream: number; type: 'error'; code: string; message: string };
