/** Barge-in, cancel and disconnect all abort the same way, and leave nothing behind, on both transports. */
import t, { type Test } from 'tap';
import { EchoEngine } from '../../server/engines/echo/engine.js';
import type { Engine, TurnEvent, TurnRequest } from '../../server/engines/types.js';
import { speechFixture } from '../fixtures/speech.js';
import { TestClient } from '../helpers/native-client.js';
import { metricValue, startTestServer, TRANSPORTS } from '../helpers/server.js';
import { RecordingEngine } from '../rest/recording-engine.js';
import { until } from '../helpers/until.js';

/** The echo engine, recording which turns it saw aborted. */
class WatchedEngine extends EchoEngine {
  readonly aborted: string[] = [];
  readonly started: string[] = [];
  override run(batch: TurnRequest[], emit: (turnId: string, event: TurnEvent) => void): Promise<void> {
    for (const turn of batch) {
      this.started.push(turn.id);
      turn.signal.addEventListener('abort', () => this.aborted.push(turn.id), { once: true });
    }
    return this.answer(batch, emit);
  }

  protected answer(batch: TurnRequest[], emit: (turnId: string, event: TurnEvent) => void): Promise<void> {
    return super.run(batch, emit);
  }
}

function slowEngine(): WatchedEngine {
  return new WatchedEngine({ tokenDelayMs: 400, capacity: 8 });
}

/**
 * A reply that runs exactly as long as the test needs, on a fast machine or a loaded one: every
 * turn waits before its first word until the test calls release() (or the turn is aborted), then
 * the echo engine answers at full speed. A turn the server should have cancelled but did not is
 * released too, and finishes `stop`, so a broken cancel fails the test instead of hanging it.
 */
class HeldEngine extends WatchedEngine {
  release!: () => void;
  private readonly released = new Promise<void>((resolve) => (this.release = resolve));

  constructor() {
    super({ tokenDelayMs: 2, capacity: 8 });
  }

  protected override answer(batch: TurnRequest[], emit: (turnId: string, event: TurnEvent) => void): Promise<void> {
    return Promise.all(
      batch.map(async (turn) => {
        const aborted = new Promise<void>((resolve) => (turn.signal.aborted ? resolve() : turn.signal.addEventListener('abort', () => resolve(), { once: true })));
        await Promise.race([this.released, aborted]);
        await super.answer([turn], emit);
      }),
    ).then(() => undefined);
  }
}

/** A session whose slow typed turn has started streaming. */
async function midTurn(t: Test, transport: (typeof TRANSPORTS)[number]) {
  const engine = slowEngine();
  const server = await startTestServer({ transport }, { engine: engine as Engine });
  t.teardown(() => server.close(0));
  const client = await TestClient.connect(`${server.wsUrl}/v1/stream`);
  await client.hello({ codec: 'pcm16', sampleRate: 16000 });
  client.send({ type: 'text', text: 'tell me a long story' });
  await client.waitFor((m) => m.type === 'delta');
  return { engine, server, client };
}

for (const transport of TRANSPORTS) {
  t.test(`${transport}: barge-in: speech during a slow reply cancels it; the new utterance is the next turn`, async (t) => {
    const engine = new HeldEngine();
    const server = await startTestServer({ transport }, { engine: engine as Engine });
    t.teardown(() => server.close(0));
    const fixture = await speechFixture(4);
    const client = await TestClient.connect(`${server.wsUrl}/v1/stream`);
    await client.hello({ codec: 'opus', sampleRate: 16000 });
    // 4x real time: each reply reaches the engine before the next sentence starts.
    await client.stream(fixture.opusPackets, 20, 4);
    // Every sentence has ended: a reply that speech did not interrupt is still held here.
    await client.waitFor((m) => m.type === 'vad' && m.state === 'silence' && m.atMs > fixture.truth.at(-1)!.endMs);
    engine.release();
    const turns = await client.waitForTurnsDone(fixture.truth.length);
    t.equal(turns.length, fixture.truth.length, 'one turn per sentence');
    t.same(
      turns.map((turn) => turn.finish),
      [...Array(fixture.truth.length - 1).fill('cancelled'), 'stop'],
      'every reply but the last was interrupted by the next sentence',
    );
    const last = turns[turns.length - 1]!;
    t.match(last.text, new RegExp(`turn ${fixture.truth.length}: heard ${last.audioMs} ms`), 'the new utterance became the next turn');
    t.same(engine.aborted, engine.started.slice(0, -1), 'the engine saw each interrupted turn aborted');
    client.close();
  });

  t.test(`${transport}: cancel ends the running turn with done/cancelled`, async (t) => {
    const { engine, client } = await midTurn(t, transport);
    client.send({ type: 'cancel' });
    const done = await client.waitFor((m) => m.type === 'done');
    t.match(done, { finish: 'cancelled' });
    // Two more word delays: a delta the engine still produced would have arrived by now.
    await new Promise((r) => setTimeout(r, 900));
    t.equal(client.messages.slice(client.messages.indexOf(done)).filter((m) => m.type === 'delta').length, 0, 'no delta after done');
    t.equal(engine.aborted.length, 1, 'the engine saw the abort');
    client.close();
  });

  t.test(`${transport}: a client that disconnects mid-turn aborts the engine run and leaves no session`, async (t) => {
    const { engine, server, client } = await midTurn(t, transport);
    t.equal(await metricValue(server, 'earshot_sessions'), 1);
    client.terminate();
    await until(() => engine.aborted.length > 0);
    t.same(engine.aborted, engine.started, 'the engine saw its turn aborted');
    await until(async () => (await metricValue(server, 'earshot_turns_in_flight')) <= 0);
    t.equal(await metricValue(server, 'earshot_sessions'), 0, 'no session left');
    t.equal(await metricValue(server, 'earshot_connections'), 0, 'no connection left');
    t.equal(await metricValue(server, 'earshot_turns_in_flight'), 0, 'no turn left in the engine');
  });

  t.test(`${transport}: busy: past the queue limit a turn gets busy with a retry hint`, async (t) => {
    const engine = new WatchedEngine({ tokenDelayMs: 300, capacity: 1 });
    const server = await startTestServer({ transport, maxQueue: 1, busyRetryAfterMs: 750 }, { engine: engine as Engine });
    t.teardown(() => server.close(0));
    const clients = await Promise.all([0, 1, 2].map(() => TestClient.connect(`${server.wsUrl}/v1/stream`)));
    for (const c of clients) await c.hello({ codec: 'pcm16', sampleRate: 16000 });
    for (const c of clients) c.send({ type: 'text', text: 'hello' });
    const busy = await clients[2]!.waitFor((m) => m.type === 'busy');
    const announced = clients[2]!.messages.find((m) => m.type === 'turn');
    t.match(busy, { retryAfterMs: 750, turnId: announced && 'turnId' in announced ? announced.turnId : 'no turn announced' }, 'busy names the announced turn it ends');
    for (const c of clients) c.close();
  });

  t.test(`${transport}: coalescing: utterances that end while a turn runs become one next turn`, async (t) => {
    const engine = new HeldEngine();
    const server = await startTestServer({ transport, coalesce: true }, { engine: engine as Engine });
    t.teardown(() => server.close(0));
    const fixture = await speechFixture(5);
    t.equal(fixture.truth.length, 3);
    const client = await TestClient.connect(`${server.wsUrl}/v1/stream`);
    await client.hello({ codec: 'opus', sampleRate: 16000, vad: { bargeIn: false } });
    await client.stream(fixture.opusPackets, 20);
    // Sentences 2 and 3 have both ended while the reply to sentence 1 is held.
    await client.waitFor((m) => m.type === 'vad' && m.state === 'silence' && m.atMs > fixture.truth[2]!.endMs);
    engine.release();
    const turns = await client.waitForTurnsDone(2);
    t.equal(turns.length, 2, 'two turns for three sentences');
    const [first, second] = turns as [(typeof turns)[0], (typeof turns)[0]];
    t.ok(Math.abs(first.startMs! - fixture.truth[0]!.startMs) <= 150, `the first turn starts at sentence 1 (${first.startMs} ms, truth ${fixture.truth[0]!.startMs} ms)`);
    t.ok(Math.abs(first.endMs! - fixture.truth[0]!.endMs) <= 150, `and ends at sentence 1 (${first.endMs} ms, truth ${fixture.truth[0]!.endMs} ms)`);
    t.ok(Math.abs(second.startMs! - fixture.truth[1]!.startMs) <= 150, 'the merged turn starts at sentence 2');
    t.ok(Math.abs(second.endMs! - fixture.truth[2]!.endMs) <= 150, 'and ends at sentence 3');
    t.ok(second.audioMs > fixture.truth[1]!.endMs - fixture.truth[1]!.startMs + (fixture.truth[2]!.endMs - fixture.truth[2]!.startMs), 'it carries both utterances');
    t.match(second.text, new RegExp(`turn 2: heard ${second.audioMs} ms`), 'the engine heard the merged audio as turn 2');
    client.close();
  });

  t.test(`${transport}: a typed text while utterances wait behind a running turn: one turn answers both, none is left running`, async (t) => {
    const engine = new HeldEngine();
    const server = await startTestServer({ transport, coalesce: true }, { engine: engine as Engine });
    t.teardown(() => server.close(0));
    const fixture = await speechFixture(5);
    const client = await TestClient.connect(`${server.wsUrl}/v1/stream`);
    await client.hello({ codec: 'opus', sampleRate: 16000, vad: { bargeIn: false } });
    await client.stream(fixture.opusPackets, 20);
    // Sentences 2 and 3 have ended: they wait behind the held reply to sentence 1.
    await client.waitFor((m) => m.type === 'vad' && m.state === 'silence' && m.atMs > fixture.truth[2]!.endMs);
    client.send({ type: 'text', text: 'and one more thing' });
    // The text cancels the held reply; the typed turn then answers at once.
    await client.waitFor((m) => m.type === 'done');
    engine.release();
    const turns = await client.waitForTurnsDone(2);
    t.same(turns.map((turn) => turn.finish), ['cancelled', 'stop'], 'the running turn is cancelled, the typed turn completes');
    const typed = turns[1]!;
    t.ok(typed.audioMs > fixture.truth[1]!.endMs - fixture.truth[1]!.startMs + (fixture.truth[2]!.endMs - fixture.truth[2]!.startMs), 'the waiting utterances joined the typed turn');
    t.match(typed.text, new RegExp(`turn 2: heard ${typed.audioMs} ms of audio at rms [\\d.]+ and read "and one more thing"`), 'the engine got the audio and the text in one message');
    await new Promise((r) => setTimeout(r, 600));
    t.equal(client.turns().length, 2, 'no other turn started');
    t.same(engine.started.filter((id) => !engine.aborted.includes(id)), [typed.turnId], 'the engine runs nothing but the typed turn');
    t.equal(await metricValue(server, 'earshot_turns_in_flight'), 0, 'nothing left in flight');
    client.close();
  });

  t.test(`${transport}: turn numbers keep counting past the history cap`, async (t) => {
    const server = await startTestServer({ transport, maxHistoryTurns: 3 });
    t.teardown(() => server.close(0));
    const client = await TestClient.connect(`${server.wsUrl}/v1/stream`);
    await client.hello({ codec: 'pcm16', sampleRate: 16000 });
    for (let i = 1; i <= 6; i++) {
      client.send({ type: 'text', text: `question ${i}` });
      await client.waitForTurnsDone(i);
    }
    t.same(client.turns().map((turn) => /turn (\d+):/.exec(turn.text)?.[1]), ['1', '2', '3', '4', '5', '6']);
    client.close();
  });
}

t.test('a turn refused for a reason other than busy gets one error frame, counted once', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.close(0));
  const client = await TestClient.connect(`${server.wsUrl}/v1/stream`);
  await client.hello({ codec: 'pcm16', sampleRate: 16000 });
  // The scheduler stops admitting turns (as at shutdown) while the session stays open.
  server.ctx.scheduler.close();
  client.send({ type: 'text', text: 'too late' });
  const refused = await client.waitFor((m) => m.type === 'error');
  // Both frames of a refusal would go out together: an error answered after it marks the end.
  client.send({ type: 'no-such-message' });
  await client.waitFor((m) => m.type === 'error' && m.code === 'bad_message');
  const announced = client.messages.find((m) => m.type === 'turn');
  t.match(refused, { code: 'shutting_down', fatal: false, retryable: true, turnId: announced && 'turnId' in announced ? announced.turnId : 'no turn announced' }, 'the error names the refused turn');
  t.equal(client.messages.filter((m) => m.type === 'error' && m.code === 'shutting_down').length, 1, 'one error frame for the refused turn');
  t.equal(await metricValue(server, 'earshot_errors_total'), 2, 'counted once (plus the bad message)');
  client.close();
});

t.test('--max-history-audio-ms: older turns leave the history once the audio kept would pass the cap', async (t) => {
  const fixture = await speechFixture(4);
  const clips = fixture.truth.slice(0, 3).map(({ startMs, endMs }) => {
    const pcm = Int16Array.from(fixture.samples16k.subarray(startMs * 16, endMs * 16), (x) => Math.round(x * 32767));
    return { ms: endMs - startMs, bytes: new Uint8Array(pcm.buffer) };
  });
  const [, second, third] = clips as [(typeof clips)[0], (typeof clips)[0], (typeof clips)[0]];
  // Room for the newest clip, not for the two newest together.
  const cap = Math.max(second.ms, third.ms) + 50;
  t.ok(cap < second.ms + third.ms, 'the cap is smaller than two clips');
  const engine = new RecordingEngine();
  const server = await startTestServer({ maxHistoryAudioMs: cap }, { engine });
  t.teardown(() => server.close(0));
  const client = await TestClient.connect(`${server.wsUrl}/v1/stream`);
  await client.hello({ codec: 'pcm16', sampleRate: 16000, vad: { enabled: false } });
  for (const [i, clip] of clips.entries()) {
    for (let at = 0; at < clip.bytes.length; at += 640) client.sendAudio(clip.bytes.subarray(at, at + 640));
    client.send({ type: 'commit' });
    await client.waitForTurnsDone(i + 1);
  }
  const audioMsOf = (turn: TurnRequest) => turn.messages.flatMap((m) => m.parts).filter((p) => p.type === 'audio').map((p) => Math.round(p.samples.length / 16));
  t.same(audioMsOf(engine.turns[0]!), [clips[0]!.ms], 'turn 1 hears its clip');
  t.same(audioMsOf(engine.turns[2]!), [third.ms], 'turn 3 hears only its own clip: the older ones no longer fit');
  t.match(client.turns()[2]!.text, /turn 3:/, 'the turn number still counts the dropped turns');
  client.close();
});
