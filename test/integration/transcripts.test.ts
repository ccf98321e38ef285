/**
 * The user's words on /v1/stream: real espeak-ng speech through the real server, hello asks
 * for transcripts, each audio turn gets one `transcript` of its own clip, made by a
 * `transcribe` turn on the scheduler; a failing transcription is reported and the
 * conversation goes on.
 */
import t from 'tap';
import type { ServerMessage } from '../../protocol/native.js';
import { speechFixture } from '../fixtures/speech.js';
import { TestClient } from '../helpers/native-client.js';
import { startTestServer } from '../helpers/server.js';
import { NO_BARGE_IN, QUEUED_TURNS } from '../helpers/turn-checks.js';
import { DeafTranscriber, RecordingEngine } from '../rest/recording-engine.js';

type Transcript = Extract<ServerMessage, { type: 'transcript' }>;
const transcripts = (client: TestClient) => client.messages.filter((m): m is Transcript => m.type === 'transcript');

t.test('each spoken turn gets a transcript of its own clip when hello asks', async (t) => {
  const engine = new RecordingEngine();
  const server = await startTestServer(QUEUED_TURNS, { engine });
  t.teardown(() => server.close(0));
  const fixture = await speechFixture(2);

  const client = await TestClient.connect(`${server.wsUrl}/v1/stream`);
  await client.hello({ codec: 'opus', sampleRate: 16000, vad: NO_BARGE_IN, transcribe: { language: 'en', prompt: 'birch canoe' } });
  await client.stream(fixture.opusPackets, 20);
  const turns = await client.waitForTurnsDone(fixture.truth.length);
  await client.waitFor(() => transcripts(client).length >= turns.length);
  t.same(
    transcripts(client).map((m) => m.turnId).sort(),
    turns.map((turn) => turn.turnId).sort(),
    'one transcript per turn, named by its turn id',
  );
  for (const turn of turns) {
    const heard = transcripts(client).find((m) => m.turnId === turn.turnId)!;
    const seconds = Number(/^\[echo test transcript: (\d+\.\d+) s of audio at rms \d\.\d+\]$/.exec(heard.text)?.[1]);
    t.ok(Math.abs(seconds * 1000 - turn.audioMs) <= 10, `${turn.turnId}: the transcript is of its ${turn.audioMs} ms clip (${heard.text})`);
    t.equal(turn.finish, 'stop', 'and the reply finished as usual');
  }
  const asked = engine.turns.filter((turn) => turn.kind === 'transcribe');
  t.equal(asked.length, turns.length, 'one transcribe turn per spoken turn');
  t.match(asked[0], { hints: { language: 'en', prompt: 'birch canoe' }, params: { temperature: 0 }, messages: [{ role: 'user', parts: [{ type: 'audio' }] }] });
  t.equal(asked[0]!.messages.length, 1, 'a transcription carries the clip, not the conversation');
  t.ok(
    engine.batches.some((batch) => batch.some((turn) => turn.kind === 'transcribe') && batch.some((turn) => turn.kind !== 'transcribe')),
    'transcriptions share batches with replies',
  );

  const quiet = await TestClient.connect(`${server.wsUrl}/v1/stream`);
  await quiet.hello({ codec: 'opus', sampleRate: 16000, vad: NO_BARGE_IN });
  await quiet.stream(fixture.opusPackets.slice(0, Math.ceil(fixture.truth[0]!.endMs / 20) + 40), 20);
  quiet.send({ type: 'text', text: 'typed, no audio' });
  await quiet.waitForTurnsDone(2);
  t.equal(transcripts(quiet).length, 0, 'no transcripts unless hello asks');
  client.close();
  quiet.close();
});

t.test('a failed transcription is reported with its reason and the conversation goes on', async (t) => {
  const server = await startTestServer(QUEUED_TURNS, { engine: new DeafTranscriber() });
  t.teardown(() => server.close(0));
  const fixture = await speechFixture(2);
  const client = await TestClient.connect(`${server.wsUrl}/v1/stream`);
  await client.hello({ codec: 'opus', sampleRate: 16000, vad: NO_BARGE_IN, transcribe: true });
  await client.stream(fixture.opusPackets, 20);
  const turns = await client.waitForTurnsDone(fixture.truth.length);
  await client.waitFor(() => transcripts(client).length >= turns.length);
  t.same(
    transcripts(client).map((m) => ({ text: m.text, error: m.error })),
    turns.map(() => ({ text: '', error: { code: 'engine_error', message: 'the speech model is down' } })),
  );
  t.same(
    turns.map((turn) => turn.finish),
    turns.map(() => 'stop'),
    'every reply still finished',
  );
  t.notOk(client.messages.some((m) => m.type === 'error'), 'no session error: only the transcripts failed');
  client.close();
});
