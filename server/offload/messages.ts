import type { AudioInputSpec } from '../audio/select.js';
import type { BatchConfirmerOptions } from '../vad/confirmer.js';
import type { VadJudging } from '../vad/judging.js';
import type { SegmenterSettings } from '../vad/segmenter.js';
import type { RingBuffers } from './ring.js';

/** Event-loop thread → audio thread: close what you hold (Silero's inference thread) and exit. */
export const STOP_THREAD = 'stop';

/** What an audio thread starts with: its ring, and its own Silero confirmer's options (none with --vad webrtc). */
export interface ThreadData {
  ring: RingBuffers;
  silero: BatchConfirmerOptions | undefined;
}

/** What opens a stream in an audio thread (sent through the ring, so it is ordered with the frames). */
export interface StreamSpec {
  audio: AudioInputSpec;
  judging: VadJudging;
  segmenter: SegmenterSettings;
  /** How a listening shard recognises the socket's audio: Realtime `input_audio_buffer.append` events; otherwise native frames. */
  framing?: 'realtime';
}

/** Audio thread → event-loop thread. Rare: one per VAD transition or bad packet, never per frame. */
export type ThreadEvent =
  | { stream: number; type: 'speech_started'; atMs: number }
  /** `committed`: the flush found speech to end (as Segmenter.flush returns). */
  | { stream: number; type: 'flushed'; committed: boolean }
  | { stream: number; type: 'speech_stopped'; atMs: number; startMs: number; endMs: number; reason: 'silence' | 'max_length' | 'commit'; audio: Float32Array }
  | { stream: number; type: 'error'; code: string; message: string }
  /** Its Silero confirmer failed: the stream's turn detection has stopped. */
  | { stream: number; type: 'failed'; message: string };
