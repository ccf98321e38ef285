/** --shards 2 on uws: a Realtime session's server VAD runs in the shard that owns its socket, with the same turns as one loop. */
import { pino } from 'pino';
import t from 'tap';
import type { ShardedTransport } from '../../server/transport/sharded.js';
import { speechFixture } from '../fixtures/speech.js';
import { metricValue, startTestServer } from '../helpers/server.js';
import { until } from '../helpers/until.js';
import { appendEvent, pcmChunks, RealtimeClient, type RealtimeEvent } from '../realtime/helpers.js';

const fixture = await speechFixture(0);
const chunks = pcmChunks(fixture.pcm24k, 24000, 100);
const n = fixture.truth.length;
const bounds = (events: RealtimeEvent[]) => events.map((e) => e.audio_start_ms ?? e.audio_end_ms);

t.test('Realtime server VAD in the shards: the same turn boundaries as one loop, an empty commit, clear and manual turns in order, bad appends, frames counted', async (t) => {
  const sharded = await startTestServer({ transport: 'uws', shards: 2, tts: 'none' });
  const single = await startTestServer({ transport: 'uws', shards: 1, tts: 'none' });
  t.teardown(() => Promise.all([sharded.close(0), single.close(0)]));
  const runs: RealtimeEvent[][] = [];
  for (const server of [sharded, single]) {
    const c = await RealtimeClient.connect(`${server.wsUrl}/v1/realtime`);
    await c.waitForType('session.created');
    c.send({ type: 'session.update', session: { type: 'realtime', audio: { input: { turn_detection: { type: 'server_vad', create_response: false } } } } });
    await c.waitForType('session.updated');
    for (const chunk of chunks) c.send(appendEvent(chunk));
    await c.waitForCount('input_audio_buffer.committed', n);
    // Every utterance has ended: nothing to commit (the shard's flush answer says so).
    c.send({ type: 'input_audio_buffer.commit', event_id: 'empty' });
    const empty = await c.waitFor((e) => e.type === 'error' && e.error.event_id === 'empty');
    t.equal(empty.error.code, 'input_audio_buffer_commit_empty', 'an empty commit is an error');
    // The clear drops the segmenter; the next pass is placed after the first on the stream's timeline.
    c.send({ type: 'input_audio_buffer.clear' });
    for (const chunk of chunks) c.send(appendEvent(chunk));
    await c.waitForCount('input_audio_buffer.committed', 2 * n);
    c.send({ type: 'input_audio_buffer.append', audio: 'not base64!', event_id: 'bad' });
    const bad = await c.waitFor((e) => e.type === 'error' && e.error.event_id === 'bad');
    t.match(bad.error, { type: 'invalid_request_error', code: 'invalid_event', param: 'audio' }, 'a bad append is answered in the door\'s shape');
    // Manual turns from here: the update drops what the shard's segmenter held; what follows buffers on this thread.
    const first = fixture.truth[0]!;
    const speech = chunks.slice(Math.floor(first.startMs / 100), Math.ceil(first.endMs / 100) + 3);
    for (const chunk of speech.slice(0, 3)) c.send(appendEvent(chunk));
    c.send({ type: 'session.update', session: { type: 'realtime', audio: { input: { turn_detection: null } } } });
    for (const chunk of speech.slice(3)) c.send(appendEvent(chunk));
    c.send({ type: 'input_audio_buffer.commit' });
    await c.waitForCount('input_audio_buffer.committed', 2 * n + 1);
    runs.push(c.events);
    const appends = 2 * chunks.length + speech.length;
    await until(async () => (await metricValue(server, 'earshot_audio_frames_total')) === appends);
    t.pass(`/metrics counts ${appends} appends`);
    c.close();
  }
  const [shardedEvents, singleEvents] = runs as [RealtimeEvent[], RealtimeEvent[]];
  const started = shardedEvents.filter((e) => e.type === 'input_audio_buffer.speech_started');
  t.equal(started.length, 2 * n, 'one utterance per sentence, twice');
  t.ok(started[n]!.audio_start_ms > fixture.durationMs, `the second pass starts after the first on the timeline (${started[n]!.audio_start_ms} ms)`);
  for (const type of ['input_audio_buffer.speech_started', 'input_audio_buffer.speech_stopped'])
    t.same(bounds(shardedEvents.filter((e) => e.type === type)), bounds(singleEvents.filter((e) => e.type === type)), `${type}: identical to the single event loop`);
  const kinds = (events: RealtimeEvent[]) => events.map((e) => e.type);
  t.same(kinds(shardedEvents), kinds(singleEvents), 'the same events in the same order');
});

t.test("a shard's Silero failure ends its Realtime session and is logged through the main thread's logger", async (t) => {
  const records: Array<{ level: number; msg: string; shard?: number }> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => records.push(JSON.parse(line)) });
  const server = await startTestServer({ transport: 'uws', shards: 2, tts: 'none' }, { logger });
  t.teardown(() => server.close(0));
  const c = await RealtimeClient.connect(`${server.wsUrl}/v1/realtime`);
  await c.waitForType('session.created');
  // The session's stream started its shard's Silero; the shard without one has nothing to fail.
  const transport = server.transport as ShardedTransport;
  for (const index of [0, 1]) transport.failSilero(index, 'injected inference fault (test)');
  // A round trip through the shard, so the fault is in place before the audio.
  c.send({ type: 'session.update', session: { type: 'realtime', instructions: 'x' } });
  await c.waitForType('session.updated');
  for (const chunk of chunks) c.send(appendEvent(chunk));
  const error = await c.waitForType('error');
  t.match(error.error, { type: 'server_error', code: 'engine_unavailable', message: /Silero VAD inference failed: injected inference fault/ }, 'an error event naming the failure');
  t.equal(await c.waitForClose(), 1013, 'then closed');
  await until(() => records.some((r) => r.msg.startsWith('Silero VAD inference failed')));
  const logged = records.find((r) => r.msg.startsWith('Silero VAD inference failed'))!;
  t.match(logged, { level: 50, shard: Number }, 'logged as an error, naming its shard');
});
