/**
 * REST is a front door to the shared pipeline: its turns batch with websocket turns, and a
 * client that goes away cancels the engine's work.
 */
import OpenAI from 'openai';
import t from 'tap';
import { ECHO_MODEL_ID, EchoEngine } from '../../server/engines/echo/engine.js';
import { TestClient } from '../helpers/native-client.js';
import { startTestServer, TRANSPORTS } from '../helpers/server.js';
import { RecordingEngine } from './recording-engine.js';

for (const transport of TRANSPORTS) {
  t.test(`a REST request and a websocket turn share a batch over ${transport}`, async (t) => {
    const engine = new RecordingEngine();
    // The gather window is what lets turns that arrive together share a batch; 100 ms covers both requests' parsing.
    const server = await startTestServer({ transport, maxWaitMs: 100, maxBatch: 8 }, { engine });
    t.teardown(() => server.close(0));
    const ws = await TestClient.connect(`${server.wsUrl}/v1/stream`);
    t.teardown(() => ws.close());
    const ready = await ws.hello({ codec: 'pcm16', sampleRate: 16000 });
    const client = new OpenAI({ apiKey: 'x', baseURL: `${server.url}/v1`, maxRetries: 0 });

    ws.send({ type: 'text', text: 'from the socket' });
    const rest = await client.chat.completions.create({ model: ECHO_MODEL_ID, user: 'batch-test', messages: [{ role: 'user', content: 'from REST' }] });
    const [wsTurn] = await ws.waitForTurnsDone(1);

    t.match(rest.choices[0]!.message.content, /read "from REST"/, 'the REST request got its own answer');
    t.match(wsTurn!.text, /read "from the socket"/, 'the websocket turn got its own answer');
    const shared = engine.batches.find((batch) => batch.some((turn) => turn.sessionId === ready.sessionId) && batch.some((turn) => turn.sessionId === 'rest:batch-test'));
    t.ok(shared, `one engine batch held both turns (batches: ${JSON.stringify(engine.batches.map((b) => b.map((turn) => turn.sessionId)))})`);
  });

  t.test(`a client that disconnects cancels its turn over ${transport}`, async (t) => {
    // Slow words so the answer is still running when the client leaves.
    const engine = new RecordingEngine(new EchoEngine({ tokenDelayMs: 100, capacity: 8 }));
    const server = await startTestServer({ transport }, { engine });
    t.teardown(() => server.close(0));
    const client = new OpenAI({ apiKey: 'x', baseURL: `${server.url}/v1`, maxRetries: 0 });

    const stream = await client.chat.completions.create({ model: ECHO_MODEL_ID, stream: true, messages: [{ role: 'user', content: 'streamed then abandoned' }] });
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) break; // leaving the loop aborts the SDK's request
    }
    const streamed = engine.turns[0]!;
    await engine.until(() => engine.events.get(streamed.id)!.some((e) => e.type === 'done'));
    t.ok(streamed.signal.aborted, 'streaming: the turn\'s signal was aborted');
    t.match(engine.events.get(streamed.id)!.at(-1), { type: 'done', finish: 'cancelled' }, 'streaming: the engine finished the turn as cancelled');
    t.ok(engine.events.get(streamed.id)!.filter((e) => e.type === 'delta').length < 5, 'streaming: long before the answer was complete');

    const gone = new AbortController();
    const whole = client.chat.completions.create({ model: ECHO_MODEL_ID, messages: [{ role: 'user', content: 'whole then abandoned' }] }, { signal: gone.signal });
    await engine.until(() => engine.turns.length === 2 && engine.events.get(engine.turns[1]!.id)!.length > 0);
    gone.abort();
    t.ok((await whole.then(() => undefined, (err: unknown) => err)) instanceof OpenAI.APIUserAbortError, 'the SDK saw its own abort');
    const abandoned = engine.turns[1]!;
    await engine.until(() => engine.events.get(abandoned.id)!.some((e) => e.type === 'done'));
    t.ok(abandoned.signal.aborted, 'whole answer: the turn\'s signal was aborted');
    t.match(engine.events.get(abandoned.id)!.at(-1), { type: 'done', finish: 'cancelled' }, 'whole answer: the engine finished the turn as cancelled');

    const after = await client.chat.completions.create({ model: ECHO_MODEL_ID, max_tokens: 2, messages: [{ role: 'user', content: 'still there?' }] });
    t.equal(after.choices[0]!.finish_reason, 'length', 'the server keeps answering after abandoned requests');
  });
}
