/**
 * The server under test, in its own process so its CPU is measured apart from the load
 * generator's. Started by bench/child.ts with a JSON spec; answers `stats` over IPC.
 *   pipeline:  the real server (startServer) with the echo test engine wrapped to time each turn
 *   transport: only a Transport whose one route counts frames, nothing decoded
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import type { Config } from '../server/config.js';
import { startServer } from '../server/app.js';
import { EchoEngine } from '../server/engines/echo/engine.js';
import type { Engine, TurnEvent, TurnRequest } from '../server/engines/types.js';
import { createLogger } from '../server/observability/log.js';
import { createTransport } from '../server/transport/select.js';
import type { WebSocketRoute } from '../server/transport/types.js';

export type ServerSpec = { mode: 'pipeline'; config: Partial<Config> } | { mode: 'transport'; transport: 'uws' | 'ws' };

export interface PipelineStats {
  /** ms from the VAD's end-of-speech decision (turn ready) to engine start. */
  turnStartMs: number[];
  /** [turnId, epoch ms] when the engine emitted each turn's first delta. */
  firstDelta: [string, number][];
}
export interface TransportStats {
  frames: number;
  bytes: number;
}
export type ChildReply = { type: 'listening'; url: string; transport: string } | { type: 'stats'; stats: PipelineStats | TransportStats } | { type: 'ok' };

const epochNow = () => performance.timeOrigin + performance.now();

/** The echo engine, timed: exact per-turn figures instead of the Prometheus buckets. */
class TimedEngine implements Engine {
  readonly name: string;
  stats: PipelineStats = { turnStartMs: [], firstDelta: [] };
  private readonly inner: Engine;

  constructor(inner: Engine) {
    this.inner = inner;
    this.name = inner.name;
  }

  capacity(): number {
    return this.inner.capacity();
  }

  models() {
    return this.inner.models();
  }

  run(batch: TurnRequest[], emit: (turnId: string, event: TurnEvent) => void): Promise<void> {
    const now = performance.now();
    for (const turn of batch) this.stats.turnStartMs.push(now - turn.readyAt);
    const seen = new Set<string>();
    return this.inner.run(batch, (turnId, event) => {
      if (event.type === 'delta' && !seen.has(turnId)) {
        seen.add(turnId);
        this.stats.firstDelta.push([turnId, epochNow()]);
      }
      emit(turnId, event);
    });
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

function reply(message: ChildReply): void {
  process.send!(message);
}

const inspector = new Session();

/** The same profile `node --cpu-prof` writes, limited to a measuring window. */
async function profile(m: { cmd: string; file?: string }): Promise<boolean> {
  if (m.cmd === 'profile-start') {
    inspector.connect();
    await inspector.post('Profiler.enable');
    await inspector.post('Profiler.start');
  } else if (m.cmd === 'profile-stop') {
    const { profile } = await inspector.post('Profiler.stop');
    writeFileSync(m.file!, JSON.stringify(profile));
    inspector.disconnect();
  } else return false;
  reply({ type: 'ok' });
  return true;
}

async function pipeline(config: Partial<Config>): Promise<void> {
  const engine = new TimedEngine(new EchoEngine({ tokenDelayMs: config.echoTokenDelayMs ?? 0, capacity: config.echoCapacity ?? 64 }));
  const server = await startServer({ ...config, host: '127.0.0.1', port: 0 }, { engine });
  reply({ type: 'listening', url: `${server.wsUrl}/v1/stream`, transport: server.transport.name });
  process.on('message', async (m: { cmd: string; file?: string }) => {
    if (await profile(m)) return;
    if (m.cmd === 'stats') {
      reply({ type: 'stats', stats: engine.stats });
      engine.stats = { turnStartMs: [], firstDelta: [] };
    } else if (m.cmd === 'stop') {
      await server.close(500);
      process.exit(0);
    }
  });
}

async function transportOnly(kind: 'uws' | 'ws'): Promise<void> {
  const stats: TransportStats = { frames: 0, bytes: 0 };
  const route: WebSocketRoute = {
    path: '/count',
    upgrade: () => ({
      accept: true,
      open: () => ({
        message(data) {
          stats.frames++;
          stats.bytes += data.length;
        },
        close() {},
      }),
    }),
  };
  const transport = createTransport(
    kind,
    {
      routes: [route],
      http: (_req, res) => {
        res.writeHead(404, {});
        res.end();
      },
      maxPayloadBytes: 1 << 20,
      maxBufferedBytes: 4 << 20,
      closeGraceMs: 2_000,
    },
    createLogger('warn'),
  );
  const port = await transport.listen('127.0.0.1', 0);
  reply({ type: 'listening', url: `ws://127.0.0.1:${port}/count`, transport: transport.name });
  process.on('message', async (m: { cmd: string }) => {
    if (m.cmd === 'stats') {
      reply({ type: 'stats', stats: { ...stats } });
      stats.frames = 0;
      stats.bytes = 0;
    } else if (m.cmd === 'stop') {
      await transport.close();
      process.exit(0);
    }
  });
}

const spec = JSON.parse(process.argv[2]!) as ServerSpec;
if (spec.mode === 'pipeline') await pipeline(spec.config);
else await transportOnly(spec.transport);
