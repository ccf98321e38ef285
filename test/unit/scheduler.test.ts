import t from 'tap';
import { EarshotError } from '../../protocol/errors.js';
import type { Engine, ModelInfo, TurnEvent, TurnRequest } from '../../server/engines/types.js';
import { createLogger } from '../../server/observability/log.js';
import { createMetrics } from '../../server/observability/metrics.js';
import { Scheduler } from '../../server/scheduler/scheduler.js';

/** An engine whose turns end only when the test says so. */
class ManualEngine implements Engine {
  readonly name = 'manual';
  readonly batches: string[][] = [];
  private readonly finishers = new Map<string, () => void>();
  constructor(private readonly cap: number) {}
  capacity() {
    return this.cap;
  }
  models(): ModelInfo[] {
    return [];
  }
  run(batch: TurnRequest[], emit: (id: string, e: TurnEvent) => void): Promise<void> {
    this.batches.push(batch.map((turn) => turn.id));
    return Promise.all(
      batch.map(
        (turn) =>
          new Promise<void>((resolve) => {
            const finish = () => {
              emit(turn.id, { type: 'delta', text: 'x' });
              emit(turn.id, { type: 'done', usage: { promptTokens: 1, completionTokens: 1 }, finish: turn.signal.aborted ? 'cancelled' : 'stop' });
              resolve();
            };
            this.finishers.set(turn.id, finish);
            turn.signal.addEventListener('abort', finish, { once: true });
          }),
      ),
    ).then(() => undefined);
  }
  finish(id: string) {
    this.finishers.get(id)?.();
  }
  async close() {}
}

function turn(id: string, sessionId = id): TurnRequest & { controller: AbortController } {
  const controller = new AbortController();
  return { id, sessionId, messages: [], params: { maxTokens: 8, temperature: 0 }, signal: controller.signal, readyAt: performance.now(), controller };
}

const logger = createLogger('silent');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('turns arriving together share a batch; capacity is never exceeded', async (t) => {
  const engine = new ManualEngine(4);
  const scheduler = new Scheduler(engine, { maxBatch: 3, maxWaitMs: 20, maxQueue: 10, busyRetryAfterMs: 100 }, createMetrics(), logger);
  const events: string[] = [];
  for (const id of ['a', 'b', 'c', 'd', 'e']) scheduler.submit(turn(id), (e) => events.push(`${id}:${e.type}`));
  await sleep(40);
  t.same(engine.batches, [['a', 'b', 'c'], ['d']], 'batches of maxBatch, then what capacity allows');
  engine.finish('a');
  await sleep(5);
  t.same(engine.batches[2], ['e'], 'a finished turn frees a place for a waiting one (continuous batching)');
  t.equal(scheduler.inFlight, 4);
});

t.test('one turn per session per batch', async (t) => {
  const engine = new ManualEngine(8);
  const scheduler = new Scheduler(engine, { maxBatch: 8, maxWaitMs: 10, maxQueue: 10, busyRetryAfterMs: 100 }, createMetrics(), logger);
  for (const [id, session] of [['a1', 'A'], ['a2', 'A'], ['b1', 'B']] as const) scheduler.submit(turn(id, session), () => {});
  await sleep(30);
  t.same(engine.batches[0], ['a1', 'b1']);
  t.same(engine.batches[1], ['a2']);
});

t.test("a session's transcriptions batch with its reply, one of each kind per batch", async (t) => {
  const engine = new ManualEngine(8);
  const scheduler = new Scheduler(engine, { maxBatch: 8, maxWaitMs: 10, maxQueue: 10, busyRetryAfterMs: 100 }, createMetrics(), logger);
  const transcription = (id: string) => ({ ...turn(id, 'A'), kind: 'transcribe' as const });
  scheduler.submit(transcription('a-heard-1'), () => {});
  scheduler.submit(turn('a-reply', 'A'), () => {});
  scheduler.submit(transcription('a-heard-2'), () => {});
  await sleep(30);
  t.same(engine.batches, [['a-heard-1', 'a-reply'], ['a-heard-2']]);
});

t.test('queue limit answers busy with a retry hint; a queued turn cancels without reaching the engine', async (t) => {
  const engine = new ManualEngine(1);
  const scheduler = new Scheduler(engine, { maxBatch: 1, maxWaitMs: 0, maxQueue: 1, busyRetryAfterMs: 250 }, createMetrics(), logger);
  scheduler.submit(turn('running'), () => {});
  const queued = turn('queued');
  const seen: TurnEvent[] = [];
  scheduler.submit(queued, (e) => seen.push(e));
  let busy: unknown;
  try {
    scheduler.submit(turn('third'), () => {});
  } catch (err) {
    busy = err;
  }
  t.ok(busy instanceof EarshotError, 'an EarshotError');
  t.match(busy, { code: 'busy', retryAfterMs: 250 });
  queued.controller.abort();
  t.match(seen, [{ type: 'done', finish: 'cancelled' }]);
  t.same(engine.batches, [['running']], 'the cancelled turn never reached the engine');
});

t.test('an engine that forgets a turn cannot hang it', async (t) => {
  const forgetful: Engine = { name: 'f', capacity: () => 2, models: () => [], run: async () => undefined, close: async () => undefined };
  const scheduler = new Scheduler(forgetful, { maxBatch: 2, maxWaitMs: 0, maxQueue: 4, busyRetryAfterMs: 1 }, createMetrics(), logger);
  const seen: TurnEvent[] = [];
  scheduler.submit(turn('x'), (e) => seen.push(e));
  await sleep(5);
  t.match(seen, [{ type: 'error' }]);
  t.equal(scheduler.inFlight, 0);
});
