import { createServer } from 'node:net';
import { startServer, type RunningServer, type StartOptions } from '../../server/app.js';
import type { Config } from '../../server/config.js';
import { createLogger } from '../../server/observability/log.js';

export { TRANSPORTS } from './transports.js';

/**
 * A real server on a free loopback port; quiet logs unless EARSHOT_TEST_LOG is set. A test that
 * asks for uws fails if no uWebSockets.js build loaded, rather than quietly running on the ws fallback.
 * One listening thread unless the test asks for shards: tests observe the one event loop (its
 * audio path, its metrics), and a thread per core per server would slow the suite. Live replies
 * are synthesised as fast as they go (--tts-lead-ms 0) unless a test asks: test/voice/pacing
 * tests the lead; elsewhere it would only make tests wait out the playback time of every reply.
 */
export async function startTestServer(config: Partial<Config> = {}, options: StartOptions = {}): Promise<RunningServer> {
  const server = await startServer(
    { host: '127.0.0.1', port: 0, engine: 'echo', echoTokenDelayMs: 2, shards: 1, ttsLeadMs: 0, ...config },
    { logger: createLogger(process.env.EARSHOT_TEST_LOG ?? 'silent'), ...options },
  );
  if (config.transport === 'uws' && !server.transport.name.startsWith('uws')) {
    await server.close(0);
    throw new Error(`asked for the uws transport but ${server.transport.name} runs: no uWebSockets.js build loaded`);
  }
  return server;
}

/** Reads one Prometheus gauge/counter value (sum over labels) from /metrics. */
export async function metricValue(server: RunningServer, name: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** A port that was free a moment ago, for tests that must restart a server on the same port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
