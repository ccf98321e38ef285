/** Hostile or broken input gets a clear native `error`; the server and other sessions keep working. */
import t from 'tap';
import { encode } from '@msgpack/msgpack';
import { speechFixture } from '../fixtures/speech.js';
import { TestClient } from '../helpers/native-client.js';
import { startTestServer, TRANSPORTS } from '../helpers/server.js';
import type { ServerMessage } from '../../protocol/native.js';

type ErrorMessage = Extract<ServerMessage, { type: 'error' }>;

async function nextError(client: TestClient): Promise<ErrorMessage> {
  const from = client.messages.length;
  return (await client.waitFor((m) => m.type === 'error', 5_000, from)) as ErrorMessage;
}

// With shards, a session's frames after hello are read in its shard: bad ones must be answered the same.
const VARIANTS = [...TRANSPORTS.map((transport) => ({ label: transport, config: { transport } })), { label: 'uws --shards 2', config: { transport: 'uws' as const, shards: 2 } }];

for (const { label, config } of VARIANTS) {
  t.test(`bad input over ${label}`, async (t) => {
    const server = await startTestServer({ ...config, maxMessageBytes: 64 * 1024, coalesce: false });
    t.teardown(() => server.close(0));
    const fixture = await speechFixture(3);

    // A healthy session streams throughout, to prove nobody else is disturbed.
    const bystander = await TestClient.connect(`${server.wsUrl}/v1/stream`);
    await bystander.hello({ codec: 'opus', sampleRate: 16000, vad: { bargeIn: false } });
    const half = Math.floor(fixture.opusPackets.length / 2);
    await bystander.stream(fixture.opusPackets.slice(0, half), 20);

    const c = await TestClient.connect(`${server.wsUrl}/v1/stream`);
    c.sendAudio(new Uint8Array([1, 2, 3]));
    t.match(await nextError(c), { code: 'protocol_order', fatal: false }, 'audio before hello');
    c.sendRaw(new Uint8Array([0xc1, 0xff, 0x00]));
    t.match(await nextError(c), { code: 'bad_message', fatal: false, message: /msgpack/ }, 'bytes that are not msgpack');
    c.sendRaw(encode({ type: 'shout', volume: 11 }));
    t.match(await nextError(c), { code: 'bad_message', fatal: false }, 'unknown type');
    c.sendRaw(encode({ type: 'text', text: 42 }));
    t.match(await nextError(c), { code: 'bad_message', fatal: false, message: /text/ }, 'schema violation');
    c.sendRaw('{"type":"hello"}');
    t.match(await nextError(c), { code: 'bad_message', fatal: false, message: /binary/ }, 'text frame');
    await c.hello({ codec: 'opus', sampleRate: 16000 });
    c.sendAudio(new Uint8Array(100).fill(0xff));
    t.match(await nextError(c), { code: 'bad_audio', fatal: false, message: /opus/ }, 'corrupt opus packet');
    c.send({ type: 'text', text: 'still there?' });
    await c.waitFor((m) => m.type === 'done');
    t.pass('the session survived its own bad input');
    c.sendRaw(new Uint8Array(100 * 1024));
    t.match(await nextError(c), { code: 'too_large', fatal: true }, 'frame over the size limit');
    t.equal(await c.waitForClose(), 1009, 'closed with 1009 (message too big)');

    const rate = await TestClient.connect(`${server.wsUrl}/v1/stream`);
    rate.send({ type: 'hello', codec: 'pcm16', sampleRate: 11025 });
    t.match(await nextError(rate), { code: 'unsupported', fatal: true, message: /11025/ }, 'unsupported sample rate');
    t.equal(await rate.waitForClose(), 1003, 'closed with 1003 (unsupported data)');

    await bystander.stream(fixture.opusPackets.slice(half), 20);
    const turns = await bystander.waitForTurnsDone(fixture.truth.length);
    t.equal(turns.length, fixture.truth.length, 'the bystander got every turn');
    t.ok(turns.every((turn) => turn.finish === 'stop'), 'and every reply');
    const health = await fetch(`${server.url}/health`);
    t.equal(health.status, 200, 'server alive');
    bystander.close();
  });
}
