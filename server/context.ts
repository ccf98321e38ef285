import type { Config } from './config.js';
import type { Confirmer } from './vad/confirmer.js';
import type { Engine, ModelInfo } from './engines/types.js';
import type { Logger } from './observability/log.js';
import type { Metrics } from './observability/metrics.js';
import type { AudioThreadPool } from './offload/pool.js';
import type { Scheduler } from './scheduler/scheduler.js';
import type { SessionSettings } from './session/types.js';
import type { VoiceStage } from './voice/stage.js';

/** What every front door shares: one pipeline. */
export interface ServerContext {
  config: Config;
  engine: Engine;
  scheduler: Scheduler;
  /** The voice stage (spoken replies); undefined with --tts none. */
  voice: VoiceStage | undefined;
  /** Present when --audio-threads > 0: native sessions decode and segment there. */
  audioThreads: AudioThreadPool | undefined;
  /** The event loop's Silero batcher (absent with --vad webrtc); audio threads run their own. */
  confirmer: Confirmer | undefined;
  metrics: Metrics;
  logger: Logger;
  transportName: () => string;
  /** True while draining for shutdown: no new sessions or requests. */
  draining: () => boolean;
  /** Checks a presented API key in constant time; true when auth is off. */
  authorize: (key: string | undefined) => boolean;
  primaryModel: () => ModelInfo;
  sessionDefaults: () => SessionSettings;
}
