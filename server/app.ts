/** Wires the rooms together: one pipeline (engine → scheduler) behind every front door and transport. */
import { accessSync, constants } from 'node:fs';
import { EarshotError } from '../protocol/errors.js';
import { keyChecker } from './auth/keys.js';
import { defaultConfig, type Config } from './config.js';
import type { ServerContext } from './context.js';
import { createEngine } from './engines/select.js';
import type { Engine } from './engines/types.js';
import { chatRoutes } from './http/chat.js';
import { createHttpHandler, type HttpRoute } from './http/router.js';
import { createGuard } from './limits/guard.js';
import { serviceRoutes } from './http/service.js';
import { speechRoutes } from './http/speech.js';
import { staticRoutes } from './http/static.js';
import { transcriptionRoutes } from './http/transcriptions.js';
import { nativeRoute } from './native/door.js';
import { createLogger, type Logger } from './observability/log.js';
import { createMetrics } from './observability/metrics.js';
import { AudioThreadPool } from './offload/pool.js';
import { Scheduler } from './scheduler/scheduler.js';
import { realtimeRoute } from './realtime/door.js';
import { createTransport } from './transport/select.js';
import type { Transport, WebSocketRoute } from './transport/types.js';
import { BatchConfirmer, defaultModelPath } from './vad/confirmer.js';
import { loadFvad } from './vad/fvad.js';
import { createVoiceStage } from './voice/stage.js';
import type { Tts } from './voice/types.js';

export interface StartOptions {
  /** An engine instance instead of the configured one (tests wrap engines to observe them). */
  engine?: Engine;
  /** A TTS engine instance instead of the configured one (tests wrap it to count what it speaks). */
  tts?: Tts;
  logger?: Logger;
}

export interface RunningServer {
  url: string;
  wsUrl: string;
  port: number;
  transport: Transport;
  ctx: ServerContext;
  /** Resolves once the engine can take turns (at once for engines that load nothing); rejects when it never will. */
  engineReady: Promise<void>;
  /** Graceful: stop accepting, let running turns finish up to `deadlineMs`, then close everything. */
  close(deadlineMs?: number): Promise<void>;
}

export async function startServer(overrides: Partial<Config> | Config = {}, options: StartOptions = {}): Promise<RunningServer> {
  const config = defaultConfig(overrides as Partial<Config>);
  const logger = options.logger ?? createLogger(config.logLevel);
  await loadFvad();
  // Unreadable TLS files stop the start before a model loads, on either transport (each then checks that they load as a pair).
  for (const file of [config.tlsCert, config.tlsKey]) if (file) accessSync(file, constants.R_OK);
  // First, so a bad model stops the start before anything else is running.
  const silero = config.vad === 'webrtc' ? undefined : { modelPath: config.vadModel ?? defaultModelPath(), maxBatch: config.vadMaxBatch, waits: { onset: config.vadOnsetWaitMs } };
  const confirmer = silero && (await BatchConfirmer.start(silero, logger));
  const engine = options.engine ?? (await createEngine(config, logger));
  const voice = await createVoiceStage(config, logger, options.tts);
  const metrics = createMetrics();
  const scheduler = new Scheduler(
    engine,
    { maxBatch: config.maxBatch, maxWaitMs: config.maxWaitMs, maxQueue: config.maxQueue, busyRetryAfterMs: config.busyRetryAfterMs },
    metrics,
    logger,
  );
  let draining = false;
  let transport: Transport | undefined;
  const audioThreads = config.audioThreads > 0 ? AudioThreadPool.start(config.audioThreads, silero, logger) : undefined;
  const ctx: ServerContext = {
    config,
    engine,
    scheduler,
    voice,
    audioThreads,
    confirmer,
    metrics,
    logger,
    transportName: () => transport?.name ?? 'none',
    draining: () => draining,
    authorize: keyChecker(config.apiKeys),
    primaryModel: () => engine.models()[0]!,
    sessionDefaults: () => ({
      params: { maxTokens: config.maxTokens, temperature: config.temperature },
      bargeIn: config.bargeIn,
      autoRespond: true,
      coalesce: config.coalesce,
      maxHistoryTurns: config.maxHistoryTurns,
      maxHistoryAudioMs: config.maxHistoryAudioMs,
    }),
  };
  const guard = createGuard(ctx);
  const wsRoutes: WebSocketRoute[] = [nativeRoute(ctx), realtimeRoute(ctx)].map((route) => guard.route(route));
  const httpRoutes: HttpRoute[] = [...serviceRoutes(ctx), ...chatRoutes(ctx), ...transcriptionRoutes(ctx), ...speechRoutes(ctx), ...staticRoutes()];
  let port: number;
  try {
    transport = createTransport(
      config.transport,
      {
        routes: wsRoutes,
        http: guard.http(createHttpHandler(ctx, httpRoutes)),
        // Front doors answer oversize messages with an error; the transport's hard cap is a backstop.
        maxPayloadBytes: config.maxMessageBytes * 4,
        maxBufferedBytes: config.maxBufferedBytes,
        closeGraceMs: config.closeGraceMs,
        ...(config.tlsCert && config.tlsKey ? { tls: { certFile: config.tlsCert, keyFile: config.tlsKey } } : {}),
      },
      logger,
      { count: config.shards, maxBodyBytes: config.maxBodyBytes, maxMessageBytes: config.maxMessageBytes, silero },
    );
    port = await transport.listen(config.host, config.port);
    const sharded = transport;
    if (sharded.shardConnections) metrics.shards.connections = () => sharded.shardConnections!();
    if (sharded.shardConnections && audioThreads)
      logger.warn({ shards: config.shards, audioThreads: config.audioThreads }, 'every socket has a listening shard, which decodes its audio: --audio-threads has nothing to do (use --shards 1 for audio threads)');
  } catch (err) {
    // A busy port or unreadable TLS files: release what started so an embedding process is left clean.
    guard.stop();
    scheduler.close();
    await transport?.close();
    await audioThreads?.close();
    await confirmer?.close();
    await engine.close();
    await voice?.close();
    throw err;
  }
  const scheme = config.tlsCert ? 'https' : 'http';
  const hostForUrl = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `${scheme}://${hostForUrl}:${port}`;
  const model = engine.models()[0]!;
  logger.info({ url, transport: transport.name, engine: engine.name, tts: voice?.tts.name ?? 'none', model: model.id, testEngine: model.testEngine, audioThreads: config.audioThreads, vad: config.vad }, `earshot listening on ${url}`);
  const running = transport;
  const engineReady = engine.ready ?? Promise.resolve();
  engineReady.then(
    () => engine.ready && logger.info({ engine: engine.name, model: model.id }, 'model ready'),
    (err: unknown) => logger.fatal({ err }, 'the model engine could not start'),
  );
  return {
    url,
    wsUrl: url.replace(/^http/, 'ws'),
    port,
    transport: running,
    ctx,
    engineReady,
    async close(deadlineMs = 5_000) {
      draining = true;
      running.stopListening();
      scheduler.close();
      const until = Date.now() + deadlineMs;
      // Turns still answering, and replies still being spoken after their text is done.
      while ((scheduler.inFlight > 0 || (voice?.speaking ?? 0) > 0) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      // Each front door says goodbye in its own protocol and closes with 1001; stragglers are cut below.
      await guard.closeAll(new EarshotError('shutting_down', 'server is shutting down', { fatal: true }), Math.min(2_000, Math.max(100, until - Date.now())));
      guard.stop();
      await running.close();
      await audioThreads?.close();
      await confirmer?.close();
      await engine.close();
      await voice?.close();
      logger.info('earshot stopped');
    },
  };
}
