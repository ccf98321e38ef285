/**
 * Acceptance: malformed JSON, unknown event types, bad base64, wrong audio formats, binary and
 * oversize frames each get one `error` event naming the offending event; the connection stays
 * usable, and another session on the same server runs undisturbed meanwhile.
 */
import t from 'tap';
import { startTestServer, TRANSPORTS } from '../helpers/server.js';
import { RealtimeClient, type RealtimeEvent } from './helpers.js';

const MAX_MESSAGE = 64 * 1024;

async function textTurn(c: RealtimeClient, text: string): Promise<RealtimeEvent> {
  const from = c.events.length;
  c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text }] } });
  c.send({ type: 'response.create' });
  return c.waitForType('response.done', from);
}

for (const transport of TRANSPORTS) {
  t.test(`bad input is answered with error events (${transport})`, async (t) => {
    const server = await startTestServer({ tts: 'none', transport, maxMessageBytes: MAX_MESSAGE });
    t.teardown(() => server.close(0));
    const url = `${server.wsUrl}/v1/realtime`;
    const bad = await RealtimeClient.connect(url);
    const good = await RealtimeClient.connect(url);
    t.teardown(() => (bad.close(), good.close()));
    await bad.waitForType('session.created');
    await good.waitForType('session.created');

    const cases: Array<{ name: string; send: () => void; code: string; eventId: string | null; param?: string }> = [
      { name: 'malformed JSON', send: () => bad.sendRaw('{"type": "session.update", '), code: 'invalid_json', eventId: null },
      { name: 'not an object', send: () => bad.sendRaw('[1, 2]'), code: 'invalid_event', eventId: null },
      { name: 'unknown event type', send: () => bad.send({ type: 'no.such.event', event_id: 'e-unknown' }), code: 'unknown_event', eventId: 'e-unknown', param: 'type' },
      { name: 'bad base64', send: () => bad.send({ type: 'input_audio_buffer.append', event_id: 'e-b64', audio: 'not*base64!' }), code: 'invalid_event', eventId: 'e-b64', param: 'audio' },
      {
        name: 'wrong audio format (GA)',
        send: () => bad.send({ type: 'session.update', event_id: 'e-fmt', session: { type: 'realtime', audio: { input: { format: { type: 'audio/opus' } } } } }),
        code: 'unsupported',
        eventId: 'e-fmt',
        param: 'session.audio.input.format.type',
      },
      {
        name: 'wrong pcm rate',
        send: () => bad.send({ type: 'session.update', event_id: 'e-rate', session: { audio: { input: { format: { type: 'audio/pcm', rate: 44100 } } } } }),
        code: 'unsupported',
        eventId: 'e-rate',
        param: 'session.audio.input.format.rate',
      },
      { name: 'wrong audio format (beta)', send: () => bad.send({ type: 'session.update', event_id: 'e-beta', session: { input_audio_format: 'g729' } }), code: 'unsupported', eventId: 'e-beta', param: 'session.input_audio_format' },
      { name: 'invalid field', send: () => bad.send({ type: 'session.update', event_id: 'e-vad', session: { turn_detection: { type: 'server_vad', threshold: 7 } } }), code: 'invalid_event', eventId: 'e-vad' },
      { name: 'binary frame', send: () => bad.sendRaw(Buffer.from([1, 2, 3])), code: 'bad_message', eventId: null },
      { name: 'oversize message', send: () => bad.send({ type: 'input_audio_buffer.append', event_id: 'e-big', audio: 'A'.repeat(MAX_MESSAGE) }), code: 'too_large', eventId: null },
      { name: 'unknown item', send: () => bad.send({ type: 'conversation.item.delete', event_id: 'e-item', item_id: 'nope' }), code: 'item_not_found', eventId: 'e-item', param: 'item_id' },
    ];

    // The other session talks throughout.
    const goodDone = textTurn(good, 'first question');
    for (const c of cases) {
      const from = bad.events.length;
      c.send();
      const event = await bad.waitForType('error', from);
      t.equal(event.error.code, c.code, `${c.name}: code`);
      t.equal(event.error.event_id, c.eventId, `${c.name}: names the offending event`);
      if (c.param) t.equal(event.error.param, c.param, `${c.name}: param`);
      t.equal(event.error.type, 'invalid_request_error', `${c.name}: type`);
      t.type(event.error.message, 'string');
      t.type(event.event_id, 'string', `${c.name}: the error event has its own event_id`);
      t.ok(bad.open, `${c.name}: connection stays open`);
    }
    t.equal(bad.ofType('error').length, cases.length, 'one error event per bad message');
    t.equal(bad.ofType('session.updated').length, 0, 'rejected updates changed nothing');

    // On a server without a voice (--tts none), audio output is refused but the rest of the update applies.
    bad.send({ type: 'session.update', event_id: 'e-audio', session: { type: 'realtime', output_modalities: ['audio'], instructions: 'Be brief.' } });
    const updated = await bad.waitForType('session.updated');
    const audioError = bad.ofType('error').at(-1)!;
    t.equal(audioError.error.event_id, 'e-audio');
    t.match(audioError.error.message, /no voice \(--tts none\): responses will be text/, 'says responses will be text');
    t.same(updated.session.output_modalities, ['text']);
    t.equal(updated.session.instructions, 'Be brief.');
    t.same(updated.session.audio.input.format, { type: 'audio/pcm', rate: 24000 }, 'the format is unchanged by the rejected updates');

    const after = await textTurn(bad, 'still there?');
    t.equal(after.response.status, 'completed', 'the connection is still usable');
    t.match(after.response.output[0].content[0].text, /read "still there\?"/);

    const goodResult = await goodDone;
    t.equal(goodResult.response.status, 'completed', 'the other session was unaffected');
    t.equal(good.ofType('error').length, 0, 'and saw no errors');
    t.equal((await fetch(`${server.url}/health`)).status, 200, 'the server is healthy');
  });
}
