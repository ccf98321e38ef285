/**
 * Spoken responses on /v1/realtime: the official SDK's default session (audio), the GA event
 * order, audio that says its transcript, barge-in that stops the audio, truncation to what was
 * heard; beta clients with G.711 output; ['text'] stays text.
 */
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import t from 'tap';
import { ulawToLinear } from '../../server/audio/g711.js';
import { MAX_DELTA_MS } from '../../server/realtime/response.js';
import { speechFixture } from '../fixtures/speech.js';
import { medianPitch, unheard } from '../helpers/hear.js';
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

// One TLS server for the two tests through the SDK (each server starts its own Silero thread
// and Flite processes); 10 ms a word, so that speech can barge in on a reply still streaming.
const tlsServer = await startTestServer({ tlsCert: tls.cert, tlsKey: tls.key, echoTokenDelayMs: 10 });
t.teardown(() => tlsServer.close(0));

t.test('openai SDK, default session: the response is spoken, says its transcript, in the GA order; barge-in stops it; truncate keeps what was heard', async (t) => {
  const server = tlsServer;
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
  const deltaMs = events.filter((e) => e.type === 'response.output_audio.delta' && e.response_id === first.response.id).map((e) => Buffer.from(e.delta, 'base64').length / 48);
  t.ok(deltaMs.length > 1 && Math.max(...deltaMs) <= MAX_DELTA_MS, `the speech arrives in deltas of at most ${MAX_DELTA_MS} ms (${deltaMs.length} deltas, longest ${Math.max(...deltaMs)} ms)`);
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

t.test('beta client: G.711 μ-law output under the beta names, speed; the voice is fixed once spoken; a response in its own format; modalities [text] stays text', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.close(0));
  const c = await RealtimeClient.connect(`${server.wsUrl}/v1/realtime?model=x`, { headers: { 'OpenAI-Beta': 'realtime=v1' } });
  t.teardown(() => c.close());
  c.send({ type: 'session.update', session: { modalities: ['text', 'audio'], output_audio_format: 'g711_ulaw', voice: 'alloy', turn_detection: null } });
  const updated = await c.waitForType('session.updated');
  t.match(updated.session, { modalities: ['text', 'audio'], output_audio_format: 'g711_ulaw', voice: 'alloy', speed: 1 });
  c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Good morning. Please open the window.' }] } });
  c.send({ type: 'response.create' });
  const done = await c.waitForType('response.done');
  t.same(done.response.modalities, ['text', 'audio']);
  t.match(done.response, { voice: 'alloy', output_audio_format: 'g711_ulaw' });
  t.match(done.response.output[0].content[0], { type: 'audio', transcript: /open the window/ });
  t.ok(c.ofType('response.audio_transcript.delta').length > 0, 'beta transcript deltas');
  t.equal(c.ofType('response.output_audio.delta').length, 0, 'no GA names for a beta client');
  const ulaw = pcmOf(c.events, 'response.audio.delta', done.response.id);
  const samples = Int16Array.from(ulaw, (b) => ulawToLinear(b));
  // Telephone bandwidth and a synthetic voice: the recogniser is rougher at 8 kHz, so one key word.
  const { missing, heard } = await unheard(samples, 8000, ['window']);
  t.same(missing, [], `G.711 at 8 kHz says the transcript (heard: ${heard})`);

  let from = c.events.length;
  c.send({ type: 'session.update', event_id: 'v', session: { voice: 'ash', speed: 1.25 } });
  const refused = await c.waitForType('error', from);
  t.match(refused.error, { param: 'session.voice', message: /cannot change/, event_id: 'v' });
  const faster = await c.waitForType('session.updated', from);
  t.match(faster.session, { voice: 'alloy', speed: 1.25 }, 'the rest of the update applies');

  from = c.events.length;
  c.send({ type: 'response.create', event_id: 'f', response: { output_audio_format: 'mp3' } });
  const format = await c.waitForType('error', from);
  t.match(format.error, { param: 'response.output_audio_format', message: /output_audio_format 'mp3'.*g711_ulaw/, event_id: 'f' });
  c.send({ type: 'response.create', response: { output_audio_format: 'pcm16' } });
  const pcm = await c.waitForType('response.done', from);
  t.match(pcm.response, { voice: 'alloy', output_audio_format: 'pcm16' });
  t.ok(pcmOf(c.events, 'response.audio.delta', pcm.response.id).length > 24_000, 'this response in pcm16 at 24 kHz');

  from = c.events.length;
  c.send({ type: 'response.create', response: { modalities: ['text'] } });
  const text = await c.waitForType('response.done', from);
  t.same(text.response.modalities, ['text']);
  t.equal(text.response.output[0].content[0].type, 'text');
  t.ok(c.events.slice(from).some((e) => e.type === 'response.text.delta'), 'text deltas');
  t.notOk(c.events.slice(from).some((e) => e.type === 'response.audio.delta'), 'no audio');
});

t.test('openai SDK: a response may pick its own voice and format; the session speed is asked of the TTS engine; bad values are errors', async (t) => {
  const server = tlsServer;
  const client = new OpenAI({ apiKey: 'unused', baseURL: `${server.url}/v1` });
  const rt = new OpenAIRealtimeWS({ model: 'earshot-echo-test-engine', options: { rejectUnauthorized: false } }, client);
  const { events, until } = recordSdkEvents(rt, WAIT_LIMIT_MS);
  const next = (type: string, from: number) => until(() => events.slice(from).find((e) => e.type === type), type);
  await new Promise<void>((resolve, reject) => {
    rt.socket.once('open', () => resolve());
    rt.socket.once('error', reject);
  });
  t.teardown(() => rt.close());
  await next('session.created', 0);
  const say = 'Good morning. Please open the window.';
  const ask = (response?: Record<string, unknown>) => {
    const from = events.length;
    rt.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: say }] } });
    rt.send({ type: 'response.create', ...(response ? { response } : {}) } as never);
    return from;
  };

  let from = events.length;
  rt.send({ type: 'session.update', event_id: 'fast', session: { type: 'realtime', audio: { output: { speed: 2 } } } });
  const tooFast = await next('error', from);
  t.match(tooFast.error, { event_id: 'fast', param: 'session.audio.output.speed', message: /1\.5/ }, 'speed past OpenAI\'s 1.5 is refused');

  from = ask({ audio: { output: { voice: 'nobody' } } });
  const unknown = await next('error', from);
  t.match(unknown.error, { param: 'response.audio.output.voice', message: /nobody.*slt/s }, 'an unknown voice names the voices');
  t.notOk(events.slice(from).some((e) => e.type === 'response.created'), 'and no response starts');

  // This response in another voice and in μ-law; the session keeps its own.
  from = ask({ audio: { output: { voice: 'slt', format: { type: 'audio/pcmu' } } } });
  const own = await next('response.done', from);
  t.match(own.response, { status: 'completed', audio: { output: { voice: 'slt', format: { type: 'audio/pcmu' } } } });
  const slt = Int16Array.from(pcmOf(events, 'response.output_audio.delta', own.response.id), (b) => ulawToLinear(b));

  from = ask();
  const plain = await next('response.done', from);
  t.match(plain.response, { status: 'completed', audio: { output: { voice: 'awb', format: { type: 'audio/pcm', rate: 24000 } } } }, 'the next response is back in the session voice and format');
  const awbBytes = pcmOf(events, 'response.output_audio.delta', plain.response.id);
  const awb = new Int16Array(awbBytes.buffer, awbBytes.byteOffset, awbBytes.length / 2);
  const normal = awb.length;
  const [high, low] = [medianPitch(slt, 8000), medianPitch(awb, 24000)];
  t.ok(high > low * 1.15, `the response's own voice (slt, ${high.toFixed(0)} Hz) is higher than the session's (awb, ${low.toFixed(0)} Hz)`);

  from = events.length;
  rt.send({ type: 'session.update', session: { type: 'realtime', audio: { output: { speed: 1.5 } } } });
  const updated = await next('session.updated', from);
  t.equal(updated.session.audio.output.speed, 1.5);
  from = ask();
  const fast = await next('response.done', from);
  const quick = pcmOf(events, 'response.output_audio.delta', fast.response.id).length / 2;
  t.ok(quick < normal * 0.8 && quick > normal * 0.5, `at speed 1.5 the reply takes ${quick} samples, at 1 ${normal}`);

  // Once spoken, a response cannot change the voice: an error, and it speaks in the session's.
  from = ask({ audio: { output: { voice: 'ash' } } });
  const locked = await next('error', from);
  t.match(locked.error, { param: 'response.audio.output.voice', message: /cannot change/ });
  const still = await next('response.done', from);
  t.match(still.response, { status: 'completed', audio: { output: { voice: 'awb' } } });
});
