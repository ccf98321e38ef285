/**
 * Acceptance: manual turns (turn_detection null: append, commit, response.create, cancel),
 * max_output_tokens, and barge-in (interrupt_response on and off), with a slow echo engine so
 * a response is surely still streaming when it is cancelled or interrupted.
 */
import t from 'tap';
import { speechFixture, type SpeechFixture } from '../fixtures/speech.js';
import { startTestServer, TRANSPORTS } from '../helpers/server.js';
import { appendEvent, pcmChunks, RealtimeClient } from './helpers.js';

const SLOW = { echoTokenDelayMs: 100 };
const fixture = await speechFixture(4);

/** 24 kHz samples of the fixture from `fromMs` to `toMs`. */
function slice(f: SpeechFixture, fromMs: number, toMs: number): Int16Array {
  return f.pcm24k.subarray(Math.round(fromMs * 24), Math.round(Math.min(toMs, f.durationMs) * 24));
}

function stream(client: RealtimeClient, samples: Int16Array, chunkMs: number): void {
  for (const chunk of pcmChunks(samples, 24000, chunkMs)) client.send(appendEvent(chunk));
}

/** A round trip: every event sent before it has been handled once this resolves. */
async function barrier(client: RealtimeClient, itemId: string): Promise<void> {
  const from = client.events.length;
  client.send({ type: 'conversation.item.retrieve', item_id: itemId });
  await client.waitFor((e) => e.type === 'conversation.item.retrieved' || e.type === 'error', from);
}

for (const transport of TRANSPORTS) {
  t.test(`manual turns and cancel (${transport})`, async (t) => {
    const server = await startTestServer({ tts: 'none', transport, ...SLOW });
    t.teardown(() => server.close(0));
    const c = await RealtimeClient.connect(`${server.wsUrl}/v1/realtime?model=earshot-echo-test-engine`);
    t.teardown(() => c.close());
    await c.waitForType('session.created');
    c.send({ type: 'session.update', session: { type: 'realtime', audio: { input: { turn_detection: null } } } });
    const updated = await c.waitForType('session.updated');
    t.equal(updated.session.audio.input.turn_detection, null, 'manual turns');

    const first = fixture.truth[0]!;
    const clip = slice(fixture, first.startMs - 200, first.endMs + 200);
    stream(c, clip, 100);
    c.send({ type: 'input_audio_buffer.commit', event_id: 'commit-1' });
    const committed = await c.waitForType('input_audio_buffer.committed');
    const added = await c.waitFor((e) => e.type === 'conversation.item.added' && e.item.id === committed.item_id);
    t.same(added.item.content, [{ type: 'input_audio', transcript: null }], 'the committed item holds the audio');
    await barrier(c, committed.item_id);
    t.equal(c.ofType('input_audio_buffer.speech_started').length, 0, 'no VAD events in manual mode');
    t.equal(c.ofType('response.created').length, 0, 'commit alone starts no response');

    c.send({ type: 'input_audio_buffer.commit', event_id: 'commit-2' });
    const empty = await c.waitForType('error');
    t.equal(empty.error.code, 'input_audio_buffer_commit_empty', 'a second commit has nothing to commit');
    t.equal(empty.error.event_id, 'commit-2', 'the error names the offending event');

    // One complete response: the engine heard the committed clip.
    c.send({ type: 'response.create' });
    const done1 = await c.waitForType('response.done');
    t.equal(done1.response.status, 'completed');
    const text1 = done1.response.output[0].content[0].text as string;
    const heardMs = Number(/heard (\d+) ms/.exec(text1)?.[1]);
    const clipMs = clip.length / 24;
    t.ok(Math.abs(heardMs - clipMs) <= 20, `engine heard the whole buffer: ${heardMs} ms of ${clipMs} ms`);

    // Cancel mid-stream.
    const from = c.events.length;
    c.send({ type: 'response.create', response: { instructions: 'Be verbose.' } });
    const created = await c.waitForType('response.created', from);
    await c.waitFor((e) => e.type === 'response.output_text.delta' && e.response_id === created.response.id);
    c.send({ type: 'response.create', event_id: 'second' });
    const busy = await c.waitFor((e) => e.type === 'error' && e.error.event_id === 'second');
    t.equal(busy.error.code, 'conversation_already_has_active_response', 'one response at a time');
    c.send({ type: 'response.cancel' });
    const done2 = await c.waitFor((e) => e.type === 'response.done' && e.response.id === created.response.id);
    t.equal(done2.response.status, 'cancelled');
    t.same(done2.response.status_details, { type: 'cancelled', reason: 'client_cancelled' });
    const streamed = c.events.filter((e) => e.type === 'response.output_text.delta' && e.response_id === created.response.id);
    t.ok(streamed.length < 10, `cut short after ${streamed.length} deltas`);
    t.equal(done2.response.output[0].content[0].text, streamed.map((e) => e.delta).join(''), 'the cancelled item holds what was streamed');
    t.equal(done2.response.output[0].status, 'incomplete');

    c.send({ type: 'response.cancel', event_id: 'cancel-again' });
    const notActive = await c.waitFor((e) => e.type === 'error' && e.error.event_id === 'cancel-again');
    t.equal(notActive.error.code, 'response_cancel_not_active');

    // max_output_tokens ends a response as incomplete.
    const from3 = c.events.length;
    c.send({ type: 'response.create', response: { max_output_tokens: 3 } });
    const done3 = await c.waitForType('response.done', from3);
    t.equal(done3.response.status, 'incomplete');
    t.same(done3.response.status_details, { type: 'incomplete', reason: 'max_output_tokens' });
    t.equal(done3.response.usage.output_tokens, 3);
    t.equal(done3.response.max_output_tokens, 3);

    // No delta of the cancelled response arrived after its response.done (cancel racing late deltas).
    const doneAt = c.events.indexOf(done2);
    t.notOk(c.events.slice(doneAt).some((e) => e.response_id === created.response.id), 'nothing of the cancelled response after its response.done');
  });
}

t.test('barge-in cancels a running response; interrupt_response false lets it finish', async (t) => {
  const server = await startTestServer({ ...SLOW, tts: 'none' });
  t.teardown(() => server.close(0));
  const [one, two] = fixture.truth;
  const firstPart = slice(fixture, 0, one!.endMs + 700);
  const secondPart = slice(fixture, one!.endMs + 700, two!.endMs + 800);

  for (const interrupt of [true, false]) {
    const c = await RealtimeClient.connect(`${server.wsUrl}/v1/realtime`);
    await c.waitForType('session.created');
    c.send({ type: 'session.update', session: { type: 'realtime', audio: { input: { turn_detection: { type: 'server_vad', interrupt_response: interrupt } } } } });
    await c.waitForType('session.updated');
    stream(c, firstPart, 20);
    const created = await c.waitForType('response.created');
    await c.waitFor((e) => e.type === 'response.output_text.delta');
    stream(c, secondPart, 20);
    const done = await c.waitFor((e) => e.type === 'response.done' && e.response.id === created.response.id);
    const secondStart = c.ofType('input_audio_buffer.speech_started')[1];
    t.ok(secondStart, `${interrupt}: the second sentence was heard`);
    if (interrupt) {
      t.equal(done.response.status, 'cancelled', 'speech during the response cancelled it');
      t.same(done.response.status_details, { type: 'cancelled', reason: 'turn_detected' });
      t.ok(c.events.indexOf(secondStart!) < c.events.indexOf(done), 'speech_started comes before the cancelled response.done');
    } else {
      t.equal(done.response.status, 'completed', 'with interrupt_response false the response finishes');
    }
    const next = await c.waitFor((e) => e.type === 'response.done' && e.response.id !== created.response.id);
    t.equal(next.response.status, 'completed', `${interrupt}: the second sentence gets its own response`);
    t.match(next.response.output[0].content[0].text, /turn 2: heard/);
    c.close();
  }
});
