/**
 * One corrupt Opus packet in a live stream (issue 13: a browser's stray packet): the sender
 * hears about it once, the server counts it, and the utterance around it still becomes its turn.
 */
import t from 'tap';
import { speechFixture } from '../fixtures/speech.js';
import { TestClient } from '../helpers/native-client.js';
import { metricValue, startTestServer } from '../helpers/server.js';

t.test('a corrupt packet mid-sentence is an error the session survives, counted in /metrics', async (t) => {
  const server = await startTestServer({ coalesce: false });
  t.teardown(() => server.close(0));
  const fixture = await speechFixture(3);
  const client = await TestClient.connect(`${server.wsUrl}/v1/stream`);
  t.teardown(() => client.close());
  await client.hello({ codec: 'opus', sampleRate: 16000, vad: { bargeIn: false } });
  const middleOfFirst = Math.round((fixture.truth[0]!.startMs + fixture.truth[0]!.endMs) / 2 / 20);
  const packets = [...fixture.opusPackets];
  packets.splice(middleOfFirst, 0, Uint8Array.of(0xff, 0xff, 0xff));
  await client.stream(packets, 20);
  const turns = await client.waitForTurnsDone(fixture.truth.length);
  const errors = client.messages.filter((m) => m.type === 'error');
  t.match(errors, [{ code: 'bad_audio', fatal: false, message: /corrupt opus packet/ }], 'one error, not fatal');
  t.equal(turns.length, fixture.truth.length, 'one turn per sentence: the bad packet neither split nor lost one');
  t.ok(turns.every((turn) => turn.finish === 'stop'), 'every reply completes');
  t.equal(await metricValue(server, 'earshot_errors_total{code="bad_audio"}'), 1, 'counted as a bad_audio error');
  t.equal(await metricValue(server, 'earshot_audio_frames_total'), packets.length, 'and as a received frame');
  t.equal(client.closeCode, undefined, 'the socket stays open');
});
