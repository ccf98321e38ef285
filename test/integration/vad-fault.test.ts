/**
 * Silero inference failing after start (issue 15, "a failing inference runtime"): every session
 * whose turn detection it served ends with an error in its door's shape (native `error` then
 * close 1013; Realtime `error` event then close), a session without VAD goes on, the process
 * stays up, and a new session gets turns again from a freshly loaded inference thread; a REST file
 * being segmented then is a 503, and the next one is cut again.
 */
import { readFile } from 'node:fs/promises';
import t from 'tap';
import type { BatchConfirmer } from '../../server/vad/confirmer.js';
import { speechFixture } from '../fixtures/speech.js';
import { TestClient } from '../helpers/native-client.js';
import { startTestServer } from '../helpers/server.js';
import { NO_BARGE_IN, QUEUED_TURNS } from '../helpers/turn-checks.js';
import { appendEvent, pcmChunks, RealtimeClient } from '../realtime/helpers.js';

t.test('a Silero failure after start ends its sessions, not the server', async (t) => {
  const server = await startTestServer(QUEUED_TURNS);
  t.teardown(() => server.close(0));
  const fixture = await speechFixture(0, { sentences: 1 });

  const native = await TestClient.connect(`${server.wsUrl}/v1/stream`);
  await native.hello({ codec: 'opus', sampleRate: 16000, vad: NO_BARGE_IN });
  const realtime = await RealtimeClient.connect(`${server.wsUrl}/v1/realtime`);
  await realtime.waitForType('session.created');
  // Manual turns: no segmenter, so nothing of it depends on Silero.
  const manual = await TestClient.connect(`${server.wsUrl}/v1/stream`);
  await manual.hello({ codec: 'opus', sampleRate: 16000, vad: { enabled: false } });

  (server.ctx.confirmer as BatchConfirmer).failNextCall('injected inference fault (test)');
  await native.stream(fixture.opusPackets, 20);

  const error = await native.waitFor((m) => m.type === 'error');
  t.match(error, { code: 'engine_unavailable', fatal: true, message: /turn detection stopped: Silero VAD inference failed: injected inference fault \(test\)/ }, 'native: an error naming the failure');
  t.equal(await native.waitForClose(), 1013, 'native: then closed (try again later)');
  const rtError = await realtime.waitForType('error');
  t.match(rtError, { error: { type: 'server_error', code: 'engine_unavailable', message: /Silero VAD inference failed: injected inference fault/ } }, 'Realtime: an error event naming the failure');
  t.equal(await realtime.waitForClose(), 1013, 'Realtime: then closed');

  await manual.stream(fixture.opusPackets, 20);
  manual.send({ type: 'commit' });
  const [turn] = await manual.waitForTurnsDone(1);
  t.equal(turn!.finish, 'stop', 'a session without VAD still gets its turn');
  t.equal((await fetch(`${server.url}/health`)).status, 200, 'the process is up');

  // A new session: the confirmer has loaded a fresh inference thread (its sessions wait for it).
  const next = await TestClient.connect(`${server.wsUrl}/v1/stream`);
  await next.hello({ codec: 'opus', sampleRate: 16000, vad: NO_BARGE_IN });
  await next.stream(fixture.opusPackets, 20);
  next.send({ type: 'commit', ack: true });
  const turns = await next.waitForTurnsDone(1);
  t.equal(turns.length, 1, 'a new session gets its turn from the restarted inference thread');
  t.equal(next.messages.filter((m) => m.type === 'error').length, 0, 'and no error');
  const rt2 = await RealtimeClient.connect(`${server.wsUrl}/v1/realtime`);
  for (const chunk of pcmChunks(fixture.pcm24k, 24000, 100)) rt2.send(appendEvent(chunk));
  await rt2.waitForType('input_audio_buffer.speech_stopped');
  t.pass('a new Realtime session detects speech again');
  for (const client of [manual, next, rt2]) client.close();

  // A file being cut into segments when inference fails: a 503 naming it; the next file is cut again.
  const upload = async () => {
    const form = new FormData();
    form.set('file', new Blob([await readFile(fixture.wav16kPath)]), 'speech.wav');
    form.set('response_format', 'verbose_json');
    return fetch(`${server.url}/v1/audio/transcriptions`, { method: 'POST', body: form });
  };
  (server.ctx.confirmer as BatchConfirmer).failNextCall('injected inference fault (test)');
  const refused = await upload();
  t.equal(refused.status, 503, 'REST verbose_json: 503');
  t.match(await refused.json(), { error: { message: /segmented: Silero VAD inference failed: injected inference fault/ } });
  const again = await upload();
  t.equal(again.status, 200, 'and the next file is segmented by the restarted thread');
  t.equal(((await again.json()) as { segments: unknown[] }).segments.length, 1);
});
