/** /metrics counts what really happened: frames, utterances, turns, batches and latencies of a real session. */
import t from 'tap';
import { speechFixture } from '../fixtures/speech.js';
import { TestClient } from '../helpers/native-client.js';
import { metricValue, startTestServer, TRANSPORTS } from '../helpers/server.js';

for (const transport of TRANSPORTS) {
  t.test(`metrics after one spoken session over ${transport}`, async (t) => {
    const server = await startTestServer({ transport, coalesce: false });
    t.teardown(() => server.close(0));
    const fixture = await speechFixture(1);
    const sentences = fixture.truth.length;
    const client = await TestClient.connect(`${server.wsUrl}/v1/stream`);
    await client.hello({ codec: 'opus', sampleRate: 16000, vad: { bargeIn: false } });
    await client.stream(fixture.opusPackets, 20);
    const turns = await client.waitForTurnsDone(sentences);
    t.ok(turns.every((turn) => turn.finish === 'stop'), 'every turn finished');
    const metric = (name: string) => metricValue(server, name);
    t.equal(await metric('earshot_audio_frames_total'), fixture.opusPackets.length, 'every packet counted once');
    t.equal(await metric('earshot_utterances_total'), sentences, 'one utterance per sentence');
    t.equal(await metric('earshot_turns_total'), sentences, 'one finished turn per sentence');
    t.equal(await metric('earshot_turn_start_seconds_count'), sentences, 'each turn timed from end of speech to engine start');
    t.equal(await metric('earshot_first_delta_seconds_count'), sentences, 'each turn timed to its first delta');
    const batches = await metric('earshot_batch_size_count');
    t.ok(batches >= 1 && batches <= sentences, `${batches} engine batches for ${sentences} turns`);
    t.equal(await metric('earshot_batch_size_sum'), sentences, 'the batches held every turn once');
    t.equal(await metric('earshot_queue_depth'), 0, 'nothing left queued');
    t.equal(await metric('earshot_turns_in_flight'), 0, 'nothing left running');
    t.equal(await metric('earshot_sessions'), 1, 'the session is still open');
    client.close();
  });
}
