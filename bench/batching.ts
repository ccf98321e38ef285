/**
 * (d) batching: the real Scheduler in front of the simulated engine (bench/sim-engine.ts),
 * loaded by a closed loop of users who each ask again 0-500 ms (think time, seeded) after
 * their reply is done, so turns do not arrive in lock-step.
 * No sockets: this isolates what batching buys from everything else.
 */
import { createLogger } from '../server/observability/log.js';
import { createMetrics } from '../server/observability/metrics.js';
import { Scheduler } from '../server/scheduler/scheduler.js';
import { SimEngine } from './sim-engine.js';
import { percentiles, round, type Percentiles } from './stats.js';

export interface BatchingResult {
  maxBatch: number;
  turnsPerS: number;
  tokensPerS: number;
  /** Engine start → first delta (what earshot_first_delta_seconds measures). */
  firstDeltaMs: Percentiles;
  /** Turn ready → first delta, queueing included. */
  readyToFirstDeltaMs: Percentiles;
}

export const BATCHING_USERS = 32;
const THINK_MS = 500;

export async function runBatching(maxBatch: number, durationMs: number, warmupMs: number): Promise<BatchingResult> {
  const engine = new SimEngine(maxBatch);
  const scheduler = new Scheduler(engine, { maxBatch, maxWaitMs: 5, maxQueue: 1024, busyRetryAfterMs: 1000 }, createMetrics(), createLogger('warn'));
  const firstDelta: number[] = [];
  const readyToFirst: number[] = [];
  let turns = 0;
  let tokens = 0;
  let measuring = false;
  let stopping = false;
  let counter = 0;
  const started = new Map<string, number>();
  const controllers = new Set<AbortController>();
  // The scheduler does not tell the engine's start time to its sink: wrap run() to see it.
  const run = engine.run.bind(engine);
  engine.run = (batch, emit) => {
    const now = performance.now();
    for (const t of batch) started.set(t.id, now);
    return run(batch, emit);
  };
  let seed = 42;
  const think = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % THINK_MS;
  };
  const user = async (session: number) => {
    while (!stopping) {
      await new Promise((r) => setTimeout(r, think()));
      if (stopping) break;
      const id = `u${session}_${++counter}`;
      const readyAt = performance.now();
      const controller = new AbortController();
      controllers.add(controller);
      await new Promise<void>((resolve) => {
        let first = true;
        scheduler.submit(
          { id, sessionId: `s${session}`, messages: [], params: { maxTokens: 64, temperature: 0 }, signal: controller.signal, readyAt },
          (event) => {
            const now = performance.now();
            if (event.type === 'delta') {
              if (measuring) tokens++;
              if (first && measuring) {
                firstDelta.push(now - started.get(id)!);
                readyToFirst.push(now - readyAt);
              }
              first = false;
              return;
            }
            started.delete(id);
            controllers.delete(controller);
            if (measuring) turns++;
            resolve();
          },
        );
      });
    }
  };
  const users = Array.from({ length: BATCHING_USERS }, (_, i) => user(i));
  await new Promise((r) => setTimeout(r, warmupMs));
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, durationMs));
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  // Stop at once: queued turns are refused by close(), running ones cancelled.
  stopping = true;
  scheduler.close();
  for (const c of controllers) c.abort();
  await Promise.all(users);
  return {
    maxBatch,
    turnsPerS: round(turns / seconds, 1),
    tokensPerS: Math.round(tokens / seconds),
    firstDeltaMs: percentiles(firstDelta),
    readyToFirstDeltaMs: percentiles(readyToFirst),
  };
}
