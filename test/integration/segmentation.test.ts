/**
 * Acceptance for the foundation: real speech (espeak-ng) over real sockets, as 20 ms Opus
 * packets and as 24 kHz PCM16, on both transports: one turn per sentence, boundaries
 * within 150 ms of the fixture's ground truth, the echo engine heard exactly the utterance.
 */
import t from 'tap';
import { speechFixture } from '../fixtures/speech.js';
import { pcmPackets, TestClient, type TurnRecord } from '../helpers/native-client.js';
import { checkTurns, NO_BARGE_IN, QUEUED_TURNS } from '../helpers/turn-checks.js';
import { startTestServer, TRANSPORTS } from '../helpers/server.js';

for (const transport of TRANSPORTS) {
  t.test(`segmentation over ${transport}`, async (t) => {
    const server = await startTestServer({ transport, ...QUEUED_TURNS });
    t.teardown(() => server.close(0));
    if (transport === 'uws') t.match(server.transport.name, /^uws/, 'a uWebSockets.js build loaded');
    for (const noisy of [false, true]) {
      const fixture = await speechFixture(noisy ? 1 : 0, { noisy });
      const label = noisy ? 'noisy' : 'clean';

      const opus = await TestClient.connect(`${server.wsUrl}/v1/stream`);
      const ready = await opus.hello({ codec: 'opus', sampleRate: 16000, vad: NO_BARGE_IN });
      t.equal(ready.transport, server.transport.name, 'ready names the transport in use');
      t.equal(ready.testEngine, true, 'ready says the echo engine is a test engine');
      await opus.stream(fixture.opusPackets, 20);
      checkTurns(t, await opus.waitForTurnsDone(fixture.truth.length), fixture, `${label} opus`);
      opus.close();

      const pcm = await TestClient.connect(`${server.wsUrl}/v1/stream`);
      await pcm.hello({ codec: 'pcm16', sampleRate: 24000, vad: NO_BARGE_IN });
      await pcm.stream(pcmPackets(fixture.pcm24k, 24000), 20);
      checkTurns(t, await pcm.waitForTurnsDone(fixture.truth.length), fixture, `${label} pcm16@24k`);
      pcm.close();
    }
  });
}

t.test('real-time and 10x-speed streaming segment the same', async (t) => {
  const server = await startTestServer(QUEUED_TURNS);
  t.teardown(() => server.close(0));
  // Two sentences: one gap between utterances to place, and the real-time pass lasts ~7 s instead of ~10.
  const fixture = await speechFixture(7, { sentences: 2 });
  const results: TurnRecord[][] = [];
  for (const speed of [1, 10]) {
    const client = await TestClient.connect(`${server.wsUrl}/v1/stream`);
    await client.hello({ codec: 'opus', sampleRate: 16000, vad: NO_BARGE_IN });
    await client.stream(fixture.opusPackets, 20, speed);
    results.push(await client.waitForTurnsDone(fixture.truth.length));
    client.close();
  }
  const bounds = (turns: TurnRecord[]) => turns.map((turn) => [turn.startMs, turn.endMs, turn.audioMs]);
  t.same(bounds(results[1]!), bounds(results[0]!), 'identical utterance boundaries and lengths');
  t.equal(results[0]!.length, fixture.truth.length);
});
