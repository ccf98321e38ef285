/**
 * The rest of the Realtime surface: API keys (header and browser subprotocol, with `realtime`
 * selected), beta clients' event names and session shape, conversation items (input_audio,
 * truncate, delete, retrieve), and G.711 μ-law / A-law input segmented like PCM.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { speechFixture } from '../fixtures/speech.js';
import { startTestServer, TRANSPORTS } from '../helpers/server.js';
import { g711Of, RealtimeClient, responseShape, type RealtimeEvent } from './helpers.js';

const TOLERANCE_MS = 200;
/** The beta API's order for a text response: no conversation.item.done, beta names for the item and the text. */
const BETA_RESPONSE_ORDER = [
  'response.created',
  'response.output_item.added',
  'conversation.item.created',
  'response.content_part.added',
  'response.text.delta*',
  'response.text.done',
  'response.content_part.done',
  'response.output_item.done',
  'response.done',
];
const fixture = await speechFixture(5);

for (const transport of TRANSPORTS) {
  t.test(`API keys and subprotocols (${transport})`, async (t) => {
    const server = await startTestServer({ tts: 'none', transport, apiKeys: ['sk-1'] });
    t.teardown(() => server.close(0));
    const url = `${server.wsUrl}/v1/realtime?model=earshot-echo-test-engine`;
    await t.rejects(RealtimeClient.connect(url), /HTTP 401/, 'no key: refused');
    await t.rejects(RealtimeClient.connect(url, { headers: { Authorization: 'Bearer wrong' } }), /HTTP 401/, 'wrong key: refused');
    await t.rejects(RealtimeClient.connect(url, { protocols: ['realtime', 'openai-insecure-api-key.wrong'] }), /HTTP 401/, 'wrong subprotocol key: refused');

    const browser = await RealtimeClient.connect(url, { protocols: ['realtime', 'openai-insecure-api-key.sk-1'] });
    t.equal(browser.protocol, 'realtime', 'the browser form selects the realtime subprotocol');
    t.equal((await browser.waitForType('session.created')).type, 'session.created', 'the session starts');
    browser.close();

    const node = await RealtimeClient.connect(url, { headers: { Authorization: 'Bearer sk-1' } });
    t.equal((await node.waitForType('session.created')).type, 'session.created', 'the Authorization header works');
    node.close();
  });
}

async function textTurn(c: RealtimeClient, text: string): Promise<RealtimeEvent> {
  const from = c.events.length;
  c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text }] } });
  c.send({ type: 'response.create' });
  return c.waitForType('response.done', from);
}

t.test('beta clients get the beta names and session shape', async (t) => {
  const server = await startTestServer({ tts: 'none' });
  t.teardown(() => server.close(0));
  const url = `${server.wsUrl}/v1/realtime`;
  for (const how of ['header', 'subprotocol'] as const) {
    const c = await RealtimeClient.connect(url, how === 'header' ? { headers: { 'OpenAI-Beta': 'realtime=v1' } } : { protocols: ['realtime', 'openai-beta.realtime-v1'] });
    const created = await c.waitForType('session.created');
    t.same(created.session.modalities, ['text'], `${how}: beta session shape`);
    t.equal(created.session.input_audio_format, 'pcm16');
    t.equal(created.session.turn_detection.type, 'server_vad');
    t.notOk('audio' in created.session, 'no GA audio block');

    c.send({ type: 'session.update', session: { modalities: ['text'], input_audio_format: 'g711_ulaw', turn_detection: null, max_response_output_tokens: 4, temperature: 0.3 } });
    const updated = await c.waitForType('session.updated');
    t.equal(updated.session.input_audio_format, 'g711_ulaw');
    t.equal(updated.session.turn_detection, null);
    t.equal(updated.session.max_response_output_tokens, 4);
    t.equal(updated.session.temperature, 0.3);

    const from = c.events.length;
    const done = await textTurn(c, 'hello');
    t.equal(done.response.status, 'incomplete', 'max_response_output_tokens applies');
    const userItem = c.events.slice(from).findIndex((e) => e.type === 'conversation.item.created');
    const responseCreated = c.events.slice(from).findIndex((e) => e.type === 'response.created');
    t.ok(userItem >= 0 && userItem < responseCreated, `${how}: the user's item is created before the response starts`);
    t.same(responseShape(c.events, done.response.id), BETA_RESPONSE_ORDER, `${how}: beta response events in the beta order`);
    const types = new Set(c.events.map((e) => e.type));
    t.ok(types.has('conversation.item.created') && types.has('response.text.delta') && types.has('response.text.done'), `${how}: beta event names`);
    t.notOk(types.has('conversation.item.added') || types.has('response.output_text.delta'), `${how}: no GA-only names`);
    t.equal(done.response.output[0].content[0].type, 'text');
    c.close();
  }
});

t.test('conversation items: input_audio, truncate, delete, retrieve', async (t) => {
  const server = await startTestServer({ tts: 'none' });
  t.teardown(() => server.close(0));
  const c = await RealtimeClient.connect(`${server.wsUrl}/v1/realtime`);
  t.teardown(() => c.close());
  await c.waitForType('session.created');
  const u = fixture.truth[0]!;
  const second = fixture.pcm24k.subarray(u.startMs * 24, (u.startMs + 1000) * 24);
  c.send({
    type: 'conversation.item.create',
    item: { id: 'my-audio', type: 'message', role: 'user', content: [{ type: 'input_audio', audio: Buffer.from(second.buffer, second.byteOffset, second.byteLength).toString('base64') }] },
  });
  const added = await c.waitForType('conversation.item.added');
  t.equal(added.item.id, 'my-audio', 'the client-chosen id is kept');
  t.equal(added.previous_item_id, null);
  c.send({ type: 'response.create' });
  const first = await c.waitForType('response.done');
  t.match(first.response.output[0].content[0].text, /turn 1: heard 1000 ms of audio/, 'the engine heard the item audio');

  c.send({ type: 'conversation.item.truncate', item_id: 'my-audio', content_index: 0, audio_end_ms: 400 });
  await c.waitForType('conversation.item.truncated');
  c.send({ type: 'conversation.item.create', previous_item_id: 'my-audio', event_id: 'stale', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'x' }] } });
  const stale = await c.waitFor((e) => e.type === 'error' && e.error.event_id === 'stale');
  t.equal(stale.error.param, 'previous_item_id', 'items are appended only');

  // Delete the reply so the truncated audio is the newest user item again.
  const replyId = first.response.output[0].id;
  c.send({ type: 'conversation.item.retrieve', item_id: replyId });
  const retrieved = await c.waitForType('conversation.item.retrieved');
  t.equal(retrieved.item.role, 'assistant', 'the reply is in the conversation under the announced id');
  c.send({ type: 'conversation.item.delete', item_id: replyId });
  await c.waitForType('conversation.item.deleted');
  const from = c.events.length;
  c.send({ type: 'response.create' });
  const again = await c.waitForType('response.done', from);
  t.match(again.response.output[0].content[0].text, /turn 1: heard 400 ms of audio/, 'truncation cut the audio');

  c.send({ type: 'conversation.item.retrieve', item_id: replyId, event_id: 'gone' });
  const gone = await c.waitFor((e) => e.type === 'error' && e.error.event_id === 'gone');
  t.equal(gone.error.code, 'item_not_found');
});

for (const law of ['ulaw', 'alaw'] as const) {
  t.test(`${law} input is segmented like pcm`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'earshot-rt-g711-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const bytes = await g711Of(fixture.wav16kPath, law, join(dir, `speech.${law}`));
    const server = await startTestServer({ tts: 'none' });
    t.teardown(() => server.close(0));
    const c = await RealtimeClient.connect(`${server.wsUrl}/v1/realtime`);
    t.teardown(() => c.close());
    await c.waitForType('session.created');
    const format = law === 'ulaw' ? 'audio/pcmu' : 'audio/pcma';
    c.send({ type: 'session.update', session: { type: 'realtime', audio: { input: { format: { type: format }, turn_detection: { type: 'server_vad', create_response: false } } } } });
    const updated = await c.waitForType('session.updated');
    t.same(updated.session.audio.input.format, { type: format });
    for (let i = 0; i < bytes.length; i += 480) c.send({ type: 'input_audio_buffer.append', audio: bytes.subarray(i, i + 480).toString('base64') });
    const n = fixture.truth.length;
    await c.waitForCount('input_audio_buffer.committed', n);
    const started = c.ofType('input_audio_buffer.speech_started');
    const stopped = c.ofType('input_audio_buffer.speech_stopped');
    t.equal(started.length, n, 'one utterance per sentence');
    fixture.truth.forEach((truth, i) => {
      t.ok(Math.abs(started[i]!.audio_start_ms - (truth.startMs - 300)) <= TOLERANCE_MS, `#${i} start ${started[i]!.audio_start_ms} vs truth ${truth.startMs}`);
      t.ok(Math.abs(stopped[i]!.audio_end_ms - (truth.endMs + 500)) <= TOLERANCE_MS, `#${i} end ${stopped[i]!.audio_end_ms} vs truth ${truth.endMs}`);
    });
    t.equal(c.ofType('response.created').length, 0, 'create_response false: no responses');
  });
}
