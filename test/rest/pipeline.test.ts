/**
 * REST is a front door to the shared pipeline: its turns batch with the native and Realtime
 * doors' turns, and a client that goes away cancels the engine's work.
 */
import OpenAI from 'openai';
import t from 'tap';
import { ECHO_MODEL_ID, EchoEngine } from '../../server/engines/echo/engine.js';
import type { TurnRequest } from '../../server/engines/types.js';
import { TestClient } from '../helpers/native-client.js';
import { RealtimeClient } from '../realtime/helpers.js';
import { startTestServer, TRANSPORTS } from '../helpers/server.js';
import { RecordingEngine } from './recording-engine.js';

for (const transport of TRANSPORTS) {
  t.test(`REST, native and Realtime turns share one engine batch over ${transport}`, async (t) => {
    const engine = new RecordingEngine();
    // A batch of three leaves the moment the third turn arrives; the long gather window only makes sure a slow machine cannot send the first ones alone.
    const server = await startTestServer({ transport, maxWaitMs: 60_000, maxBatch: 3, tts: 'none' }, { engine });
    t.teardown(() => server.close(0));
    const ws = await TestClient.connect(`${server.wsUrl}/v1/stream`);
    t.teardown(() => ws.close());
    await ws.hello({ codec: 'pcm16', sampleRate: 16000 });
    const realtime = await RealtimeClient.connect(`${server.wsUrl}/v1/realtime`);
    t.teardown(() => realtime.close());
    await realtime.waitForType('session.created');
    const client = new OpenAI({ apiKey: 'x', baseURL: `${server.url}/v1`, maxRetries: 0 });

    ws.send({ type: 'text', text: 'from the socket' });
    realtime.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'from realtime' }] } });
    realtime.send({ type: 'response.create' });
    const rest = await client.chat.completions.create({ model: ECHO_MODEL_ID, messages: [{ role: 'user', content: 'from REST' }] });
    const [wsTurn] = await ws.waitForTurnsDone(1);
    const realtimeDone = await realtime.waitForType('response.done');

    t.match(rest.choices[0]!.message.content, /read "from REST"/, 'the REST request got its own answer');
    t.match(wsTurn!.text, /read "from the socket"/, 'the native turn got its own answer');
    t.match(realtimeDone.response.output[0].content[0].text, /read "from realtime"/, 'the Realtime response got its own answer');
    const said = (turn: TurnRequest) => JSON.stringify(turn.messages.at(-1)?.parts);
    const shared = engine.batches.find((batch) => ['from the socket', 'from realtime', 'from REST'].every((text) => batch.some((turn) => said(turn).includes(text))));
    t.ok(shared, `one engine batch held all three (batches: ${JSON.stringify(engine.batches.map((b) => b.map(said)))})`);
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
