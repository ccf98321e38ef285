/** 50 concurrent sessions, each a different real-speech fixture: nobody hears anyone else. */
import t from 'tap';
import { speechFixture } from '../fixtures/speech.js';
import { TestClient } from '../helpers/native-client.js';
import { metricValue, startTestServer } from '../helpers/server.js';
import { until } from '../helpers/until.js';

const SESSIONS = 50;

t.test(`${SESSIONS} concurrent sessions get only their own turns`, async (t) => {
  const server = await startTestServer({ coalesce: false, maxBatch: 16 });
  t.teardown(() => server.close(0));
  const fixtures = await Promise.all(Array.from({ length: SESSIONS }, (_, i) => speechFixture(10 + i)));
  const clients = await Promise.all(fixtures.map(() => TestClient.connect(`${server.wsUrl}/v1/stream`)));
  await Promise.all(clients.map((c) => c.hello({ codec: 'opus', sampleRate: 16000, vad: { bargeIn: false } })));
  t.equal(await metricValue(server, 'earshot_sessions'), SESSIONS, 'every session is counted');
  // Real-time pace keeps all 50 streams interleaved on the server, as live microphones would be.
  await Promise.all(clients.map((c, i) => c.stream(fixtures[i]!.opusPackets, 20, 4)));
  const results = await Promise.all(clients.map((c, i) => c.waitForTurnsDone(fixtures[i]!.truth.length, 60_000)));
  let mismatches = 0;
  results.forEach((turns, i) => {
    const truth = fixtures[i]!.truth;
    if (turns.length !== truth.length) mismatches++;
    turns.forEach((turn, k) => {
      const heard = /heard (\d+) ms/.exec(turn.text)?.[1];
      const own = truth[k];
      if (!own || Number(heard) !== turn.audioMs || Math.abs(turn.startMs! - own.startMs) > 150 || Math.abs(turn.endMs! - own.endMs) > 150) mismatches++;
    });
  });
  t.equal(mismatches, 0, 'each session got exactly its own utterances, and the engine heard each one');
  for (const c of clients) c.close();
  await until(async () => (await metricValue(server, 'earshot_sessions')) <= 0);
  t.equal(await metricValue(server, 'earshot_sessions'), 0, 'no session left behind');
});
