/**
 * Decode + VAD on audio threads (--audio-threads): the same segmentation as on the event loop,
 * errors still reach the right session, sessions stay separate, and nothing is left behind.
 */
import t from 'tap';
import { speechFixture } from '../fixtures/speech.js';
import { pcmPackets, TestClient, type TurnRecord } from '../helpers/native-client.js';
import { metricValue, startTestServer } from '../helpers/server.js';
import { checkTurns, NO_BARGE_IN, QUEUED_TURNS } from '../helpers/turn-checks.js';
import { until } from '../helpers/until.js';

const bounds = (turns: TurnRecord[]) => turns.map((turn) => [turn.startMs, turn.endMs, turn.audioMs, turn.text]);

t.test('segmentation on audio threads matches the event-loop path', async (t) => {
  const threaded = await startTestServer({ ...QUEUED_TURNS, audioThreads: 2 });
  const inline = await startTestServer(QUEUED_TURNS);
  t.teardown(() => Promise.all([threaded.close(0), inline.close(0)]));
  for (const noisy of [false, true]) {
    const fixture = await speechFixture(noisy ? 1 : 0, { noisy });
    for (const codec of ['opus', 'pcm16'] as const) {
      const label = `${noisy ? 'noisy' : 'clean'} ${codec}`;
      const runs: TurnRecord[][] = [];
      for (const server of [threaded, inline]) {
        const client = await TestClient.connect(`${server.wsUrl}/v1/stream`);
        await client.hello(codec === 'opus' ? { codec, sampleRate: 16000, vad: NO_BARGE_IN } : { codec, sampleRate: 24000, vad: NO_BARGE_IN });
        await client.stream(codec === 'opus' ? fixture.opusPackets : pcmPackets(fixture.pcm24k, 24000), 20);
        runs.push(await client.waitForTurnsDone(fixture.truth.length));
        client.close();
      }
      checkTurns(t, runs[0]!, fixture, `threaded ${label}`);
      t.same(bounds(runs[0]!), bounds(runs[1]!), `${label}: identical to the event-loop path`);
    }
  }
});

t.test('on audio threads: bad packets, commit order, many sessions, clean close', async (t) => {
  const server = await startTestServer({ ...QUEUED_TURNS, audioThreads: 2 });
  t.teardown(() => server.close(0));
  const fixture = await speechFixture(6);

  const client = await TestClient.connect(`${server.wsUrl}/v1/stream`);
  await client.hello({ codec: 'opus', sampleRate: 16000, vad: NO_BARGE_IN });
  client.sendAudio(new Uint8Array(100).fill(0xff));
  t.match(await client.waitFor((m) => m.type === 'error'), { code: 'bad_audio', fatal: false }, 'a corrupt packet is reported to its session');
  // Half of the first sentence, then commit: the commit must land after those packets.
  const firstEnd = fixture.truth[0]!.startMs + (fixture.truth[0]!.endMs - fixture.truth[0]!.startMs) / 2;
  await client.stream(fixture.opusPackets.slice(0, Math.round(firstEnd / 20)), 20);
  client.send({ type: 'commit' });
  const [turn] = await client.waitForTurnsDone(1);
  t.ok(Math.abs(turn!.endMs! - firstEnd) <= 100, `the committed utterance ends where the audio stopped (${turn!.endMs} vs ${Math.round(firstEnd)})`);
  client.close();

  const fixtures = await Promise.all(Array.from({ length: 20 }, (_, i) => speechFixture(30 + i)));
  const clients = await Promise.all(fixtures.map(() => TestClient.connect(`${server.wsUrl}/v1/stream`)));
  await Promise.all(clients.map((c) => c.hello({ codec: 'opus', sampleRate: 16000, vad: NO_BARGE_IN })));
  await Promise.all(clients.map((c, i) => c.stream(fixtures[i]!.opusPackets, 20, 8)));
  const results = await Promise.all(clients.map((c, i) => c.waitForTurnsDone(fixtures[i]!.truth.length, 60_000)));
  results.forEach((turns, i) => checkTurns(t, turns, fixtures[i]!, `session ${i}`));
  for (const c of clients) c.close();
  await until(async () => (await metricValue(server, 'earshot_sessions')) <= 0);
  t.equal(await metricValue(server, 'earshot_sessions'), 0, 'no session left');
});
