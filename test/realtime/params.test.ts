/**
 * Realtime settings reach the engine: session and per-response instructions, temperature and
 * output token limits (GA and beta names) land in each TurnRequest, seen by a recording engine.
 * And interrupt_response: an update that leaves it out keeps the barge-in in force, first the
 * server's --barge-in, both as reported and as the session behaves.
 */
import t from 'tap';
import type { Message, TurnRequest } from '../../server/engines/types.js';
import { speechFixture } from '../fixtures/speech.js';
import { startTestServer } from '../helpers/server.js';
import { RecordingEngine } from '../rest/recording-engine.js';
import { appendEvent, pcmChunks, RealtimeClient } from './helpers.js';

const DEFAULTS = { maxTokens: 40, temperature: 0.35 };

function system(turn: TurnRequest): string | undefined {
  const first: Message | undefined = turn.messages[0];
  if (first?.role !== 'system') return undefined;
  return first.parts.map((p) => (p.type === 'text' ? p.text : `<${p.type}>`)).join('');
}

/** Sends response.create and returns the turn the engine was handed for it. */
async function respond(c: RealtimeClient, engine: RecordingEngine, response?: Record<string, unknown>): Promise<TurnRequest> {
  const from = c.events.length;
  const before = engine.turns.length;
  c.send({ type: 'response.create', ...(response ? { response } : {}) });
  const done = await c.waitFor((e) => e.type === 'response.done' || e.type === 'error', from);
  if (done.type === 'error') throw new Error(`response.create failed: ${done.error.message}`);
  if (engine.turns.length !== before + 1) throw new Error(`expected one new turn, the engine got ${engine.turns.length - before}`);
  return engine.turns.at(-1)!;
}

async function update(c: RealtimeClient, session: Record<string, unknown>): Promise<Record<string, any>> {
  const from = c.events.length;
  c.send({ type: 'session.update', session });
  return (await c.waitForType('session.updated', from)).session;
}

function say(c: RealtimeClient, text: string): void {
  c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text }] } });
}

t.test('GA session and response settings reach the engine', async (t) => {
  const engine = new RecordingEngine();
  const server = await startTestServer({ ...DEFAULTS, tts: 'none' }, { engine });
  t.teardown(() => server.close(0));
  const c = await RealtimeClient.connect(`${server.wsUrl}/v1/realtime`);
  t.teardown(() => c.close());
  await c.waitForType('session.created');
  say(c, 'hello');

  const plain = await respond(c, engine);
  t.same(plain.params, { maxTokens: DEFAULTS.maxTokens, temperature: DEFAULTS.temperature }, "before any update the server's --max-tokens and --temperature apply");
  t.equal(system(plain), undefined, 'and there is no system message');

  await update(c, { type: 'realtime', instructions: 'Session prompt.', temperature: 0.6, max_output_tokens: 9, audio: { input: { turn_detection: null } } });
  const session = await respond(c, engine);
  t.equal(system(session), 'Session prompt.', 'session instructions are the system message');
  t.same(session.params, { maxTokens: 9, temperature: 0.6 }, 'session temperature and max_output_tokens arrive');
  t.same(session.messages.map((m) => m.role), ['system', 'user', 'assistant'], 'the system message comes before the conversation (the item, the first reply)');

  const overridden = await respond(c, engine, { instructions: 'Response prompt.', temperature: 1.5, max_output_tokens: 4 });
  t.equal(system(overridden), 'Response prompt.', "a response's instructions replace the session's for that response");
  t.same(overridden.params, { maxTokens: 4, temperature: 1.5 }, "a response's temperature and max_output_tokens arrive");

  const after = await respond(c, engine);
  t.equal(system(after), 'Session prompt.', 'the next response is back on the session instructions');
  t.same(after.params, { maxTokens: 9, temperature: 0.6 }, 'and on the session parameters');

  const unlimited = await respond(c, engine, { max_output_tokens: 'inf' });
  t.equal(unlimited.params.maxTokens, DEFAULTS.maxTokens, "'inf' is the server's --max-tokens");

  await update(c, { type: 'realtime', instructions: '', max_output_tokens: 'inf', temperature: 0 });
  const cleared = await respond(c, engine);
  t.equal(system(cleared), undefined, 'empty instructions remove the system message');
  t.same(cleared.params, { maxTokens: DEFAULTS.maxTokens, temperature: 0 }, 'temperature 0 is a value, not a missing one');
});

t.test('beta session and response settings reach the engine', async (t) => {
  const engine = new RecordingEngine();
  const server = await startTestServer({ ...DEFAULTS, tts: 'none' }, { engine });
  t.teardown(() => server.close(0));
  const c = await RealtimeClient.connect(`${server.wsUrl}/v1/realtime`, { headers: { 'OpenAI-Beta': 'realtime=v1' } });
  t.teardown(() => c.close());
  await c.waitForType('session.created');
  const session = await update(c, { instructions: 'Beta prompt.', temperature: 0.8, max_response_output_tokens: 6, turn_detection: null });
  t.equal(session.max_response_output_tokens, 6, 'the beta session shape answers');
  say(c, 'hello');

  const turn = await respond(c, engine);
  t.equal(system(turn), 'Beta prompt.');
  t.same(turn.params, { maxTokens: 6, temperature: 0.8 }, 'max_response_output_tokens and temperature arrive');

  const limited = await respond(c, engine, { max_response_output_tokens: 3, instructions: 'Once.' });
  t.equal(limited.params.maxTokens, 3, "a beta response's max_response_output_tokens arrives");
  t.equal(system(limited), 'Once.');
});

t.test("an update without interrupt_response keeps the server's --barge-in false", async (t) => {
  const server = await startTestServer({ tts: 'none', bargeIn: false, echoTokenDelayMs: 100 });
  t.teardown(() => server.close(0));
  const c = await RealtimeClient.connect(`${server.wsUrl}/v1/realtime`);
  t.teardown(() => c.close());
  const created = await c.waitForType('session.created');
  t.equal(created.session.audio.input.turn_detection.interrupt_response, false, 'the session starts with the server setting');

  const tuned = await update(c, { type: 'realtime', audio: { input: { turn_detection: { type: 'server_vad', silence_duration_ms: 500 } } } });
  t.equal(tuned.audio.input.turn_detection.silence_duration_ms, 500, 'the update applied');
  t.equal(tuned.audio.input.turn_detection.interrupt_response, false, 'tuning the VAD does not switch barge-in on');

  // Behaviour, not just the report: speech during a response leaves it running.
  const fixture = await speechFixture(4);
  const [one, two] = fixture.truth;
  const part = (fromMs: number, toMs: number) => fixture.pcm24k.subarray(Math.round(fromMs * 24), Math.round(Math.min(toMs, fixture.durationMs) * 24));
  for (const chunk of pcmChunks(part(0, one!.endMs + 700), 24000, 20)) c.send(appendEvent(chunk));
  const response = await c.waitForType('response.created');
  await c.waitForType('response.output_text.delta');
  for (const chunk of pcmChunks(part(one!.endMs + 700, two!.endMs + 800), 24000, 20)) c.send(appendEvent(chunk));
  const done = await c.waitFor((e) => e.type === 'response.done' && e.response.id === response.response.id);
  t.ok(c.ofType('input_audio_buffer.speech_started').length >= 2, 'the second sentence was heard while the response ran');
  t.equal(done.response.status, 'completed', 'and did not cancel the response');
  await c.waitFor((e) => e.type === 'response.done' && e.response.id !== response.response.id);

  const on = await update(c, { type: 'realtime', audio: { input: { turn_detection: { type: 'server_vad', interrupt_response: true } } } });
  t.equal(on.audio.input.turn_detection.interrupt_response, true, 'an explicit interrupt_response applies');
  const kept = await update(c, { type: 'realtime', audio: { input: { turn_detection: { type: 'server_vad', threshold: 0.6 } } } });
  t.equal(kept.audio.input.turn_detection.interrupt_response, true, 'a later update without it keeps the value the client chose');
});

t.test('semantic_vad is accepted and reported as asked, its eagerness choosing the silence', async (t) => {
  const server = await startTestServer({ tts: 'none' });
  t.teardown(() => server.close(0));
  const c = await RealtimeClient.connect(`${server.wsUrl}/v1/realtime`);
  t.teardown(() => c.close());
  await c.waitForType('session.created');
  const semantic = await update(c, { type: 'realtime', audio: { input: { turn_detection: { type: 'semantic_vad', eagerness: 'high' } } } });
  t.match(semantic.audio.input.turn_detection, { type: 'semantic_vad', eagerness: 'high' }, 'the session says semantic_vad, eagerness high');
  const plain = await update(c, { type: 'realtime', audio: { input: { turn_detection: { type: 'server_vad' } } } });
  t.match(plain.audio.input.turn_detection, { type: 'server_vad', silence_duration_ms: 500 }, 'back to server_vad with the server silence');
});

t.test('beta turn_detection without interrupt_response keeps --barge-in false', async (t) => {
  const server = await startTestServer({ tts: 'none', bargeIn: false });
  t.teardown(() => server.close(0));
  const c = await RealtimeClient.connect(`${server.wsUrl}/v1/realtime`, { headers: { 'OpenAI-Beta': 'realtime=v1' } });
  t.teardown(() => c.close());
  await c.waitForType('session.created');
  const session = await update(c, { turn_detection: { type: 'server_vad' } });
  t.equal(session.turn_detection.interrupt_response, false);
});
