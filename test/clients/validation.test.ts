/** Server messages are validated at the client's edge: a malformed frame is reported and dropped, never trusted. */
import t from 'tap';
import { once } from 'node:events';
import { Encoder } from '@msgpack/msgpack';
import { WebSocketServer } from 'ws';
import { EarshotClient } from '../../clients/node/index.js';
import { decodeServerMessage } from '../../protocol/codec.js';

const encode = (value: unknown) => new Encoder().encode(value);
const READY = { type: 'ready', version: 1, sessionId: 's1', transport: 'ws', engine: 'echo', testEngine: true, limits: { maxMessageBytes: 1, maxUtteranceMs: 1, maxHistoryTurns: 1, idleTimeoutMs: 0 } };

t.test('decodeServerMessage accepts the protocol and refuses the rest', async (t) => {
  t.same(decodeServerMessage(encode(READY)), READY);
  t.same(decodeServerMessage(encode({ type: 'busy', retryAfterMs: 5, turnId: 't1' })), { type: 'busy', retryAfterMs: 5, turnId: 't1' });
  for (const bad of [{ ...READY, sessionId: 7 }, { type: 'delta', turnId: 't1' }, { type: 'done', turnId: 't1', usage: { promptTokens: -1, completionTokens: 0 }, finish: 'stop' }, { type: 'vad', state: 'loud', atMs: 0 }, { type: 'shout' }, 'ready', null])
    t.throws(() => decodeServerMessage(encode(bad)), { code: 'bad_message', message: /malformed server message/ }, JSON.stringify(bad));
});

t.test('the client reports a malformed frame, drops it and goes on', async (t) => {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  t.teardown(() => server.close());
  await once(server, 'listening');
  server.on('connection', (socket) => {
    socket.once('message', () => {
      socket.send(encode({ ...READY, sessionId: undefined }));
      socket.send(encode(READY));
    });
  });
  const { port } = server.address() as { port: number };
  const client = new EarshotClient({ url: `ws://127.0.0.1:${port}/v1/stream`, codec: 'pcm16', sampleRate: 16000 });
  const malformed: Error[] = [];
  client.on('malformed', (err) => malformed.push(err));
  const ready = await client.connect();
  t.equal(ready.sessionId, 's1', 'the valid ready was taken');
  t.equal(malformed.length, 1, 'the malformed one was reported');
  t.match(malformed[0]?.message, /malformed server message/);
  client.close();
});
