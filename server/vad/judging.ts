/** A segmenter for one stream, judged the way --vad (and the session) asks. */
import type { Confirmer } from './confirmer.js';
import { WebRtcVad, type FvadModule } from './fvad.js';
import { VadSegmenter, type SegmentEvent, type SegmenterSettings, type VadMode } from './segmenter.js';

/** How a session's speech is judged: the --vad mode, WebRTC VAD's mode and Silero's threshold. */
export interface VadJudging {
  mode: VadMode;
  aggressiveness: number;
  threshold: number;
}

/** `confirmer` is the calling thread's Silero batcher; webrtc mode needs none. */
export function segmenterFor(
  fvad: FvadModule,
  judging: VadJudging,
  settings: SegmenterSettings,
  confirmer: Confirmer | undefined,
  emit: (event: SegmentEvent) => void,
): VadSegmenter {
  if (judging.mode !== 'webrtc' && !confirmer) throw new Error(`--vad ${judging.mode} needs a Silero confirmer on this thread`);
  const webrtc = judging.mode === 'silero' ? undefined : new WebRtcVad(fvad, judging.aggressiveness);
  return new VadSegmenter({ webrtc, confirmer: judging.mode === 'webrtc' ? undefined : confirmer, threshold: judging.threshold }, settings, emit);
}
