/**
 * Spoken responses on /v1/realtime: the official SDK's default session (audio), the GA event
 * order, audio that says its transcript, barge-in that stops the audio, truncation to what was
 * heard; beta clients with G.711 output; ['text'] stays text.
 */
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import t from 'tap';
import { ulawToLinear } from '../../server/audio/g711.js';
import { speechFixture } from '../fixtures/speech.js';
import { unheard } from '../helpers/hear.js';
import { startTestServer } from '../helpers/server.js';
import { selfSignedCert } from '../helpers/tls.js';
import { pcmChunks, RealtimeClient, recordSdkEvents, responseShape, type RealtimeEvent } from './helpers.js';

const WAIT_LIMIT_MS = 30_000;

const SPOKEN_ORDER = [
  'response.created',
  'response.output_item.added',
  'conversation.item.added',
  'response.content_part.added',
  'response.output_audio.done',
  'response.output_audio_transcript.done',
  'response.content_part.done',
  'conversation.item.done',
  'response.output_item.done',
  'response.done',
];

function pcmOf(events: RealtimeEvent[], type: string, responseId: string): Buffer {
  return Buffer.concat(events.filter((e) => e.type === type && e.response_id === responseId).map((e) => Buffer.from(e.delta as string, 'base64')));
}

const tls = await selfSignedCert();
t.teardown(tls.dispose);

t.test('openai SDK, default session: the response is spoken, says its transcript, in the GA order; barge-in stops it; truncate keeps what was heard', async (t) => {
  const server = await startTestServer({ tlsCert: tls.cert, tlsKey: tls.key, echoTokenDelayMs: 10 });
  t.teardown(() => server.close(0));
  const client = new OpenAI({ apiKey: 'unused', baseURL: `${server.url}/v1` });
  const rt = new OpenAIRealtimeWS({ model: 'earshot-echo-test-engine', options: { rejectUnauthorized: false } }, client);
  const { events, errors, until } = recordSdkEvents(rt, WAIT_LIMIT_MS);
  const find = (type: string, from = 0) => () => events.slice(from).find((e) => e.type === type);
  await new Promise<void>((resolve, reject) => {
    rt.socket.once('open', () => resolve());
    rt.socket.once('error', reject);
  });
  t.teardown(() => rt.close());
  const created = await until(find('session.created'), 'session.created');
  t.same(created.session.output_modalities, ['audio'], 'audio is the default, as at OpenAI');
  t.same(created.session.audio.output.format, { type: 'audio/pcm', rate: 24000 });

  rt.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Good morning. Please open the window.' }] } });
  rt.send({ type: 'response.create' });
  const first = await until(find('response.done'), 'the first response');
  t.equal(first.response.status, 'completed');
  t.same(first.response.output_modalities, ['audio']);
  const shape = responseShape(events, first.response.id);
  t.same(
    shape.filter((type) => !type.endsWith('.delta')),
    SPOKEN_ORDER,
    'events in the GA order (deltas between content_part.added and the dones)',
  );
  t.ok(shape.indexOf('response.output_audio.delta') > shape.indexOf('response.content_part.added'), 'audio deltas');
  t.ok(shape.lastIndexOf('response.output_audio.delta') < shape.indexOf('response.output_audio.done'), 'audio deltas before output_audio.done');
  const content = first.response.output[0].content[0];
  t.equal(content.type, 'output_audio');
  const transcript = events.filter((e) => e.type === 'response.output_audio_transcript.delta' && e.response_id === first.response.id).map((e) => e.delta).join('');
  t.equal(content.transcript, transcript, 'the item carries the streamed transcript');
  t.match(transcript, /read "Good morning\. Please open the window\."/);
  const audio = pcmOf(events, 'response.output_audio.delta', first.response.id);
  const samples = new Int16Array(audio.buffer, audio.byteOffset, audio.length / 2);
  const { missing, heard } = await unheard(samples, 24000, ['morning', 'window']);
  t.same(missing, [], `the audio says the transcript (heard: ${heard})`);

  // Barge-in: the user talks over a long spoken answer.
  const speech = await speechFixture(3);
  const from = events.length;
  rt.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'One two three. Four five six seven eight. Nine ten eleven twelve. Thirteen fourteen fifteen. Sixteen seventeen eighteen nineteen twenty.' }] } });
  rt.send({ type: 'response.create' });
  await until(find('response.output_audio.delta', from), 'the second response to speak');
  for (const chunk of pcmChunks(speech.pcm24k, 24000, 40)) rt.send({ type: 'input_audio_buffer.append', audio: chunk.toString('base64') });
  const cut = await until(() => events.slice(from).find((e) => e.type === 'response.done'), 'the interrupted response');
  t.match(cut.response.status_details, { type: 'cancelled', reason: 'turn_detected' });
  const doneAt = events.indexOf(cut);
  t.ok(events.slice(from, doneAt).some((e) => e.type === 'input_audio_buffer.speech_started'), 'speech started before the response ended');
  await until(find('input_audio_buffer.committed', from), 'the utterance');
  t.notOk(
    events.slice(doneAt).some((e) => e.response_id === cut.response.id),
    'nothing of the cancelled response after its response.done',
  );
  const itemId = cut.response.output[0].id as string;
  const spokenMs = Math.floor((pcmOf(events, 'response.output_audio.delta', cut.response.id).length / 2 / 24000) * 1000);
  const heardMs = Math.min(spokenMs, 400);
  const before = events.length;
  rt.send({ type: 'conversation.item.truncate', item_id: itemId, content_index: 0, audio_end_ms: heardMs });
  const truncated = await until(find('conversation.item.truncated', before), 'truncated');
  t.match(truncated, { item_id: itemId, content_index: 0, audio_end_ms: heardMs });
  rt.send({ type: 'conversation.item.retrieve', item_id: itemId });
  const retrieved = await until(find('conversation.item.retrieved', before), 'retrieved');
  const kept = retrieved.item.content[0].transcript as string;
  const full = cut.response.output[0].content[0].transcript as string;
  t.ok(kept.length > 0 && kept.length < full.length, `kept "${kept}" of "${full}"`);
  rt.send({ type: 'conversation.item.truncate', item_id: itemId, content_index: 0, audio_end_ms: spokenMs + 60_000 });
  await until(() => (errors.length > 0 ? events[0] : undefined), 'an error for truncating past the audio');
  t.match(String((errors[0] as Error).message), /beyond/);
});

t.test('beta client: G.711 μ-law output under the beta names; the voice is fixed once spoken; modalities [text] stays text', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.close(0));
  const c = await RealtimeClient.connect(`${server.wsUrl}/v1/realtime?model=x`, { headers: { 'OpenAI-Beta': 'realtime=v1' } });
  t.teardown(() => c.close());
  c.send({ type: 'session.update', session: { modalities: ['text', 'audio'], output_audio_format: 'g711_ulaw', voice: 'alloy', turn_detection: null } });
  const updated = await c.waitForType('session.updated');
  t.match(updated.session, { modalities: ['text', 'audio'], output_audio_format: 'g711_ulaw', voice: 'alloy' });
  c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Good morning. Please open the window.' }] } });
  c.send({ type: 'response.create' });
  const done = await c.waitForType('response.done');
  t.same(done.response.modalities, ['text', 'audio']);
  t.match(done.response.output[0].content[0], { type: 'audio', transcript: /open the window/ });
  t.ok(c.ofType('response.audio_transcript.delta').length > 0, 'beta transcript deltas');
  t.equal(c.ofType('response.output_audio.delta').length, 0, 'no GA names for a beta client');
  const ulaw = pcmOf(c.events, 'response.audio.delta', done.response.id);
  const samples = Int16Array.from(ulaw, (b) => ulawToLinear(b));
  // Telephone bandwidth and a synthetic voice: the recogniser is rougher at 8 kHz, so one key word.
  const { missing, heard } = await unheard(samples, 8000, ['window']);
  t.same(missing, [], `G.711 at 8 kHz says the transcript (heard: ${heard})`);

  let from = c.events.length;
  c.send({ type: 'session.update', event_id: 'v', session: { voice: 'ash' } });
  const refused = await c.waitForType('error', from);
  t.match(refused.error, { param: 'session.voice', message: /cannot change/, event_id: 'v' });

  from = c.events.length;
  c.send({ type: 'response.create', response: { modalities: ['text'] } });
  const text = await c.waitForType('response.done', from);
  t.same(text.response.modalities, ['text']);
  t.equal(text.response.output[0].content[0].type, 'text');
  t.ok(c.events.slice(from).some((e) => e.type === 'response.text.delta'), 'text deltas');
  t.notOk(c.events.slice(from).some((e) => e.type === 'response.audio.delta'), 'no audio');
});
