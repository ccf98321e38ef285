/**
 * The mlx engine with real worker.py child processes, running the stand-in mlx_vlm from
 * test/fixtures (it answers with what it heard: duration and RMS of each clip, clips, user
 * turns and their words), plus the worker's own Python unit tests.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import t from 'tap';
import { EarshotError } from '../../protocol/errors.js';
import { FrameDecoder, encodeFrame } from '../../server/engines/mlx/framing.js';
import { MlxEngine, type MlxEngineOptions } from '../../server/engines/mlx/pool.js';
import { createLogger } from '../../server/observability/log.js';
import { createMetrics } from '../../server/observability/metrics.js';
import { Scheduler } from '../../server/scheduler/scheduler.js';
import type { Message, TurnEvent, TurnRequest } from '../../server/engines/types.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURES = join(ROOT, 'test', 'fixtures');
const PYTHON = '/usr/bin/python3';
const RATE = 16_000;

/** The part of a tap test the helpers need. */
interface Teardown {
  teardown(fn: () => unknown): void;
}

function tone(ms: number, amplitude: number, freq = 440): Float32Array {
  const samples = new Float32Array((RATE * ms) / 1000);
  for (let i = 0; i < samples.length; i++) samples[i] = amplitude * Math.sin((2 * Math.PI * freq * i) / RATE);
  return samples;
}

/** What the stand-in says for a clip, computed here from the same samples. */
function heard(samples: Float32Array): string {
  let sum = 0;
  for (const s of samples) sum += s * s;
  return `heard ${Math.round((samples.length * 1000) / RATE)} ms rms ${Math.sqrt(sum / samples.length).toFixed(4)}`;
}

function userAudio(samples: Float32Array, text?: string): Message {
  return { role: 'user', parts: [...(text ? [{ type: 'text' as const, text }] : []), { type: 'audio', samples }] };
}

let nextId = 0;
function turn(messages: Message[], options: { sessionId?: string; signal?: AbortSignal; maxTokens?: number } = {}): TurnRequest {
  nextId++;
  return {
    id: `turn-${nextId}`,
    sessionId: options.sessionId ?? `session-${nextId}`,
    messages,
    params: { maxTokens: options.maxTokens ?? 64, temperature: 0 },
    signal: options.signal ?? new AbortController().signal,
    readyAt: performance.now(),
  };
}

interface Outcome {
  text: string;
  deltas: number;
  end: Exclude<TurnEvent, { type: 'delta' }> | undefined;
  eventsAfterEnd: number;
}

/** Runs a batch, recording every event per turn; `onDelta` sees each delta as it comes. */
function runBatch(engine: MlxEngine, requests: TurnRequest[], onDelta?: (turnId: string, outcome: Outcome) => void) {
  const outcomes = new Map<string, Outcome>(requests.map((r) => [r.id, { text: '', deltas: 0, end: undefined, eventsAfterEnd: 0 }]));
  const done = engine.run(requests, (turnId, event) => {
    const outcome = outcomes.get(turnId)!;
    if (outcome.end) outcome.eventsAfterEnd++;
    else if (event.type === 'delta') {
      outcome.text += event.text;
      outcome.deltas++;
      onDelta?.(turnId, outcome);
    } else outcome.end = event;
  });
  return { outcomes, done: done.then(() => outcomes) };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function startEngine(t: Teardown, options: Partial<MlxEngineOptions> & { standin?: Record<string, string> } = {}) {
  const { standin, ...rest } = options;
  const engine = await MlxEngine.start({
    model: 'standin/gemma',
    workers: 1,
    python: PYTHON,
    readyTimeoutMs: 20_000,
    pingIntervalMs: 100,
    hangTimeoutMs: 2000,
    restartBackoffMs: 50,
    env: { PYTHONPATH: FIXTURES, ...standin },
    logger: pino({ level: 'silent' }),
    ...rest,
  });
  t.teardown(() => engine.close());
  return engine;
}

async function tempLog(t: Teardown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'earshot-mlx-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'steps.jsonl');
}

async function loggedBatchSizes(path: string): Promise<number[]> {
  const text = await readFile(path, 'utf8');
  return text
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { batch: number }).batch);
}

t.test('frame decoder handles split and merged chunks', async (t) => {
  const audio = Buffer.from(tone(20, 0.5).buffer);
  const messages = [{ type: 'delta', turnId: 'a', text: 'héllo' }, { type: 'pong' }, { type: 'run', pcm: audio }];
  const stream = Buffer.concat(messages.map((m) => encodeFrame(m)));
  for (const size of [1, 3, 7, stream.length]) {
    const decoder = new FrameDecoder();
    const out: unknown[] = [];
    for (let i = 0; i < stream.length; i += size) out.push(...decoder.push(stream.subarray(i, i + size)));
    t.same(out, messages, `chunks of ${size}`);
  }
  t.throws(() => new FrameDecoder(16).push(encodeFrame({ text: 'x'.repeat(64) })), /exceeds 16/);
});

t.test('three concurrent turns each hear their own audio', async (t) => {
  const engine = await startEngine(t, { workers: 2, maxBatchPerWorker: 2, standin: { STANDIN_TOKEN_DELAY_MS: '5' } });
  await until(() => engine.capacity() === 4, 'both workers');
  t.same(engine.models(), [{ id: 'standin/gemma', ownedBy: 'mlx', testEngine: false, inputs: { audio: true, image: false }, maxAudioMs: 30_000 }]);
  const clips = [tone(400, 0.1), tone(800, 0.3, 220), tone(1200, 0.5, 880)];
  const requests = clips.map((clip) => turn([{ role: 'system', parts: [{ type: 'text', text: 'be brief' }] }, userAudio(clip)]));
  const outcomes = await runBatch(engine, requests).done;
  const textTokens: number[] = [];
  requests.forEach((request, i) => {
    const outcome = outcomes.get(request.id)!;
    t.equal(outcome.text, `${heard(clips[i]!)} clips 1 users 1 system be brief`, `turn ${i} heard its own clip`);
    t.ok(outcome.deltas > 5, 'streamed token by token');
    const usage = outcome.end?.type === 'done' ? outcome.end.usage : undefined;
    t.same(outcome.end, { type: 'done', finish: 'stop', usage: { promptTokens: usage?.promptTokens ?? -1, completionTokens: 14, audioTokens: clips[i]!.length / 640 } });
    textTokens.push((usage?.promptTokens ?? 0) - (usage?.audioTokens ?? 0));
    t.equal(outcome.eventsAfterEnd, 0);
  });
  // Same prompt text around clips of 10, 20 and 30 audio tokens: prompt tokens include the audio ones.
  t.ok(textTokens[0]! > 0 && textTokens.every((n) => n === textTokens[0]), `prompt tokens = the same text tokens (${textTokens.join(', ')}) + each clip's audio tokens`);
  t.same(
    engine.status().map((s) => s.restarts),
    [0, 0],
  );
});

t.test('two-turn history reaches the worker in order', async (t) => {
  const engine = await startEngine(t);
  const latest = tone(500, 0.3);
  const messages: Message[] = [
    { role: 'system', parts: [{ type: 'text', text: 'be brief' }] },
    userAudio(tone(1000, 0.1), 'alpha'),
    { role: 'assistant', parts: [{ type: 'text', text: 'one' }] },
    userAudio(latest, 'beta'),
  ];
  const request = turn(messages);
  const outcome = (await runBatch(engine, [request]).done).get(request.id)!;
  // Only the newest clip is heard; the earlier one is a note in its place (history.ts), kept apart from the words around it.
  t.equal(outcome.text, `${heard(latest)} clips 1 users 2 system be brief text alpha [voice message, 1.0 s] beta`);
});

t.test('batch sizes seen by the model match maxBatch; new turns join a running batch', async (t) => {
  const log = await tempLog(t);
  const engine = await startEngine(t, { maxBatchPerWorker: 3, standin: { STANDIN_LOG: log, STANDIN_TOKEN_DELAY_MS: '20' } });
  t.equal(engine.capacity(), 3);
  await runBatch(engine, [turn([userAudio(tone(200, 0.2))]), turn([userAudio(tone(400, 0.2))]), turn([userAudio(tone(600, 0.2))])]).done;
  const full = await loggedBatchSizes(log);
  t.equal(Math.max(...full), 3, 'one decode batch held every turn');

  let late: Promise<Map<string, Outcome>> | undefined;
  const first = runBatch(engine, [turn([userAudio(tone(300, 0.2))])], () => {
    late ??= runBatch(engine, [turn([userAudio(tone(900, 0.2))])]).done;
  });
  await first.done;
  const lateOutcome = [...(await late!).values()][0]!;
  t.match(lateOutcome.text, /^heard 900 ms/);
  const sizes = (await loggedBatchSizes(log)).slice(full.length);
  t.ok(sizes.includes(2), 'the late turn was decoded together with the running one');
});

t.test('cancel ends the turn within one token and frees the sequence', async (t) => {
  const engine = await startEngine(t, { standin: { STANDIN_TOKEN_DELAY_MS: '30' } });
  const controller = new AbortController();
  const request = turn([userAudio(tone(800, 0.2))], { signal: controller.signal });
  const { outcomes, done } = runBatch(engine, [request], (_, outcome) => {
    if (outcome.deltas === 1) controller.abort();
  });
  const outcome = (await done).get(request.id)!;
  t.equal(outcome.deltas, 1, 'no delta after the abort');
  t.same(outcome.end, { type: 'done', finish: 'cancelled', usage: { promptTokens: 0, completionTokens: 1 } });
  await until(() => engine.status()[0]!.inFlight === 0, 'the worker to confirm the cancel');
  t.equal(outcomes.get(request.id)!.eventsAfterEnd, 0, 'late worker frames were dropped');
  const next = turn([userAudio(tone(400, 0.2))]);
  t.equal((await runBatch(engine, [next]).done).get(next.id)!.end?.type, 'done');
});

t.test('a killed worker fails only its turns, is restarted, and serves again', async (t) => {
  const engine = await startEngine(t, { workers: 2, maxBatchPerWorker: 2, standin: { STANDIN_TOKEN_DELAY_MS: '20' } });
  await until(() => engine.capacity() === 4, 'both workers');
  const victim = engine.status()[0]!.pid!;
  const requests = [turn([userAudio(tone(400, 0.2))]), turn([userAudio(tone(800, 0.2))])];
  let killed = false;
  const { done } = runBatch(engine, requests, () => {
    if (!killed) {
      killed = true;
      process.kill(victim, 'SIGKILL');
    }
  });
  const outcomes = await done;
  // Least-loaded routing put the first turn on worker 0 and the second on worker 1.
  const lost = outcomes.get(requests[0]!.id)!.end;
  t.equal(lost?.type, 'error');
  if (lost?.type === 'error') {
    t.ok(lost.error instanceof EarshotError);
    t.equal(lost.error.code, 'engine_unavailable');
    t.equal(lost.error.retryable, true);
  }
  t.equal(outcomes.get(requests[1]!.id)!.end?.type, 'done', 'the other worker finished its turn');
  await until(() => engine.status()[0]!.state === 'ready', 'the restarted worker');
  t.not(engine.status()[0]!.pid, victim);
  t.equal(engine.status()[0]!.restarts, 1);
  const retry = turn([userAudio(tone(400, 0.2))], { sessionId: requests[0]!.sessionId });
  t.equal((await runBatch(engine, [retry]).done).get(retry.id)!.text, `${heard(tone(400, 0.2))} clips 1 users 1`);
});

t.test('a turn queued while the only worker restarts runs once it is back', async (t) => {
  const engine = await startEngine(t, { maxBatchPerWorker: 1, standin: { STANDIN_TOKEN_DELAY_MS: '20' } });
  // The real scheduler in front, as in the server: it must learn that capacity came back.
  const scheduler = new Scheduler(engine, { maxBatch: 1, maxWaitMs: 0, maxQueue: 8, busyRetryAfterMs: 100 }, createMetrics(), createLogger('silent'));
  const victim = engine.status()[0]!.pid!;
  const ends = new Map<string, TurnEvent>();
  const submit = (request: TurnRequest) => scheduler.submit(request, (event) => event.type !== 'delta' && ends.set(request.id, event));
  const running = turn([userAudio(tone(400, 0.2))]);
  const queued = turn([userAudio(tone(800, 0.2))]);
  submit(running);
  submit(queued);
  t.equal(scheduler.queued, 1, 'the second turn waits: the worker takes one at a time');
  process.kill(victim, 'SIGKILL');
  await until(() => ends.has(running.id), 'the running turn to fail');
  t.match(ends.get(running.id), { type: 'error' }, 'the running turn failed with the worker');
  await until(() => ends.has(queued.id), 'the queued turn to run on the restarted worker');
  t.match(ends.get(queued.id), { type: 'done', finish: 'stop' }, 'the queued turn ran once the worker was back, with no new submit to wake the scheduler');
  t.not(engine.status()[0]!.pid, victim);
});

t.test('a session goes back to the worker that served it, even when another is as free', async (t) => {
  const engine = await startEngine(t, { workers: 2, maxBatchPerWorker: 2, standin: { STANDIN_TOKEN_DELAY_MS: '20' } });
  await until(() => engine.capacity() === 4, 'both workers');
  const busyWorker = () => engine.status().findIndex((s) => s.inFlight > 0);
  // B takes worker 0 (ties go to the first), so A's first turn lands on worker 1.
  const b = runBatch(engine, [turn([userAudio(tone(400, 0.2))], { sessionId: 'B' })]);
  await until(() => busyWorker() === 0, 'B on worker 0');
  const a = runBatch(engine, [turn([userAudio(tone(400, 0.2))], { sessionId: 'A' })]);
  await until(() => engine.status()[1]!.inFlight === 1, 'A on worker 1');
  await Promise.all([a.done, b.done]);
  t.same(engine.status().map((s) => s.inFlight), [0, 0], 'both idle: least-loaded routing alone would pick worker 0');
  const again = runBatch(engine, [turn([userAudio(tone(400, 0.2))], { sessionId: 'A' })]);
  await until(() => busyWorker() >= 0, 'the next turn of A to start');
  t.equal(busyWorker(), 1, "A's next turn went to the worker that holds its prompt cache");
  await again.done;
});

t.test('a worker that crashes mid-generation is replaced', async (t) => {
  const engine = await startEngine(t, { standin: { STANDIN_CRASH_AFTER_TOKENS: '3' } });
  const first = engine.status()[0]!.pid;
  const request = turn([userAudio(tone(400, 0.2))]);
  const outcome = (await runBatch(engine, [request]).done).get(request.id)!;
  t.equal(outcome.deltas, 3);
  t.equal(outcome.end?.type === 'error' && outcome.end.error.retryable, true);
  await until(() => engine.status()[0]!.state === 'ready' && engine.status()[0]!.pid !== first, 'the replacement');
});

t.test('a hung worker is detected, its turns fail, and it is replaced', async (t) => {
  const engine = await startEngine(t, { pingIntervalMs: 50, hangTimeoutMs: 800, standin: { STANDIN_HANG_AFTER_TOKENS: '2' } });
  const first = engine.status()[0]!.pid;
  const request = turn([userAudio(tone(400, 0.2))]);
  const outcome = (await runBatch(engine, [request]).done).get(request.id)!;
  t.equal(outcome.deltas, 2);
  t.equal(outcome.end?.type, 'error');
  if (outcome.end?.type === 'error') {
    t.equal(outcome.end.error.code, 'engine_unavailable');
    t.match(outcome.end.error.message, /no answer for \d+ ms/);
  }
  await until(() => engine.status()[0]!.state === 'ready' && engine.status()[0]!.pid !== first, 'the replacement');
});

t.test('turn errors map to Earshot errors and leave the worker running', async (t) => {
  const engine = await startEngine(t);
  const long = turn([userAudio(tone(31_000, 0.1))]);
  const image = turn([{ role: 'user', parts: [{ type: 'image', bytes: new Uint8Array(4), mime: 'image/png' }] }]);
  const outcomes = await runBatch(engine, [long, image]).done;
  const tooLong = outcomes.get(long.id)!.end;
  t.ok(tooLong?.type === 'error' && tooLong.error.code === 'limit_exceeded' && /31\.0 s/.test(tooLong.error.message));
  const unsupported = outcomes.get(image.id)!.end;
  t.ok(unsupported?.type === 'error' && unsupported.error.code === 'unsupported');
  const ok = turn([userAudio(tone(400, 0.2))]);
  t.equal((await runBatch(engine, [ok]).done).get(ok.id)!.end?.type, 'done');
});

t.test('start fails with the reason when the model cannot load', async (t) => {
  const err = await startEngine(t, { model: 'standin/missing', workers: 2 }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof EarshotError);
  t.equal((err as EarshotError).code, 'engine_unavailable');
  t.match((err as EarshotError).message, /model_not_found: standin\/missing/);
});

t.test('a worker that does not get ready in time is killed, and start says why', async (t) => {
  const err = await startEngine(t, { readyTimeoutMs: 300, standin: { STANDIN_LOAD_DELAY_MS: '5000' } }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof EarshotError);
  t.equal((err as EarshotError).code, 'engine_unavailable');
  t.match((err as EarshotError).message, /no loading progress for 300 ms/);
});

t.test('close drains in-flight turns, then stops the workers', async (t) => {
  const engine = await startEngine(t, { standin: { STANDIN_TOKEN_DELAY_MS: '10' } });
  const request = turn([userAudio(tone(400, 0.2))]);
  const { done } = runBatch(engine, [request]);
  await until(() => engine.status()[0]!.inFlight === 1, 'the turn to start');
  await engine.close();
  t.equal((await done).get(request.id)!.end?.type, 'done', 'the in-flight turn finished');
  t.equal(engine.status()[0]!.state, 'dead');
  const after = turn([userAudio(tone(400, 0.2))]);
  const end = (await runBatch(engine, [after]).done).get(after.id)!.end;
  t.ok(end?.type === 'error' && end.error.code === 'shutting_down');
});

t.test('worker.py unit tests pass', async (t) => {
  const { stderr } = await promisify(execFile)(PYTHON, ['-m', 'unittest', 'discover', '-s', 'test/python'], {
    cwd: ROOT,
    env: { ...process.env, PYTHONPATH: FIXTURES },
  });
  t.match(stderr, /\nOK\s*$/);
});

t.test('a transcription turn reaches the worker as the instruction and its clip, without the conversation', async (t) => {
  const engine = await startEngine(t);
  const clip = tone(600, 0.2);
  const request: TurnRequest = { ...turn([userAudio(clip)]), kind: 'transcribe', hints: { language: 'en' } };
  const outcome = (await runBatch(engine, [request]).done).get(request.id)!;
  t.match(outcome.text, new RegExp(`^${heard(clip)} clips 1 users 1 text Transcribe the speech in the audio verbatim\\. The speech is in language 'en'\\.`));
});
