/** Picks the engine from config: `auto` is mlx where python3 can import mlx_vlm, else the echo test engine. */
import { execFile } from 'node:child_process';
import type { Config } from '../config.js';
import type { Logger } from '../observability/log.js';
import { EchoEngine } from './echo/engine.js';
import type { Engine } from './types.js';

function canImportMlxVlm(python: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(python, ['-c', 'import mlx_vlm'], { timeout: 20_000 }, (err) => resolve(!err));
  });
}

export async function createEngine(config: Config, logger: Logger): Promise<Engine> {
  let kind = config.engine;
  if (kind === 'auto') {
    kind = (await canImportMlxVlm(config.python)) ? 'mlx' : 'echo';
    if (kind === 'echo')
      logger.warn(
        'no model engine: mlx_vlm is not importable here, so Earshot runs the ECHO TEST ENGINE (it reports facts about the audio it heard; it is not a model). ' +
          'On an Apple Silicon Mac: pip install -r server/engines/mlx/requirements.txt, then start with --engine mlx; or point --engine openai at an OpenAI-compatible upstream.',
      );
  }
  switch (kind) {
    case 'mlx': {
      const { MlxEngine } = await import('./mlx/pool.js');
      // Not awaited: the server listens (and /health shows the download) while the model loads.
      return MlxEngine.create({
        model: config.mlxModel,
        workers: config.mlxWorkers,
        python: config.python,
        maxBatchPerWorker: config.mlxMaxBatch,
        readyTimeoutMs: config.mlxLoadStallMs,
        pingIntervalMs: 5_000,
        hangTimeoutMs: config.mlxHangTimeoutMs,
        logger,
      });
    }
    case 'openai': {
      const { OpenAIUpstreamEngine } = await import('./openai/engine.js');
      return new OpenAIUpstreamEngine({
        baseURL: config.upstreamUrl!,
        ...(config.upstreamKey ? { apiKey: config.upstreamKey } : {}),
        model: config.upstreamModel!,
        ...(config.upstreamTranscriptionModel ? { transcriptionModel: config.upstreamTranscriptionModel } : {}),
        concurrency: config.upstreamConcurrency,
        timeoutMs: config.upstreamTimeoutMs,
        historyAudio: config.upstreamHistoryAudio,
        retries: 2,
        probeIntervalMs: config.upstreamProbeMs,
        logger,
      });
    }
    default:
      return new EchoEngine({ tokenDelayMs: config.echoTokenDelayMs, capacity: config.echoCapacity });
  }
}
