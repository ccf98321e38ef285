import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Every Prometheus series Earshot exports; one registry per server so tests can run several. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const audioFrames = new FrameCount();
  const shards = { connections: (): number[] => [] };
  const m = {
    /** Set by the app once the transport runs: open websockets per listening shard. */
    shards,
    shardConnections: new Gauge({
      name: 'earshot_shard_connections',
      help: 'open websocket connections by listening shard (--shards)',
      labelNames: ['shard'] as const,
      registers: [registry],
      collect() {
        shards.connections().forEach((open, shard) => this.set({ shard: String(shard) }, open));
      },
    }),
    registry,
    sessions: new Gauge({ name: 'earshot_sessions', help: 'open sessions by front door', labelNames: ['door'] as const, registers: [registry] }),
    connections: new Gauge({ name: 'earshot_connections', help: 'open websocket connections', registers: [registry] }),
    frames: audioFrames,
    framesSeries: new Counter({
      name: 'earshot_audio_frames_total',
      help: 'audio packets received',
      registers: [registry],
      collect() {
        this.inc(audioFrames.takeNew());
      },
    }),
    utterances: new Counter({ name: 'earshot_utterances_total', help: 'utterances cut by the VAD', labelNames: ['reason'] as const, registers: [registry] }),
    turns: new Counter({ name: 'earshot_turns_total', help: 'turns finished', labelNames: ['finish'] as const, registers: [registry] }),
    errors: new Counter({ name: 'earshot_errors_total', help: 'errors sent to clients', labelNames: ['code'] as const, registers: [registry] }),
    queueDepth: new Gauge({ name: 'earshot_queue_depth', help: 'turns waiting for the engine', registers: [registry] }),
    inFlight: new Gauge({ name: 'earshot_turns_in_flight', help: 'turns the engine is running', registers: [registry] }),
    batchSize: new Histogram({ name: 'earshot_batch_size', help: 'turns per engine batch', buckets: [1, 2, 4, 8, 16, 32, 64], registers: [registry] }),
    queueWait: new Histogram({
      name: 'earshot_turn_start_seconds',
      help: 'turn ready (end of speech; or the end of the session\'s previous turn, when it waited behind it; REST: request arrival) to engine start',
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    firstDelta: new Histogram({ name: 'earshot_first_delta_seconds', help: 'engine start to first delta', buckets: LATENCY_BUCKETS, registers: [registry] }),
    firstAudio: new Histogram({
      name: 'earshot_first_audio_seconds',
      help: 'turn ready (end of speech, as for earshot_turn_start_seconds) to the first audio of its spoken reply',
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * Counts audio packets as a plain number: prom-client's inc() builds a label object and a
 * return value per call, and this runs once per 20 ms frame of every session (issue 14's GC
 * share). The Prometheus counter takes what is new when it is scraped.
 */
class FrameCount {
  private total = 0;
  private reported = 0;

  inc(): void {
    this.total++;
  }

  /** Frames a listening shard decoded itself, reported in bulk. */
  add(frames: number): void {
    this.total += frames;
  }

  takeNew(): number {
    const fresh = this.total - this.reported;
    this.reported = this.total;
    return fresh;
  }
}
