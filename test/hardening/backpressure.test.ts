/**
 * A client that stops reading while replies stream gets a bounded amount buffered for it,
 * then is dropped (websocket: close 1008; REST streaming: the connection), its turn is
 * cancelled, and the server's memory does not follow the flood.
 */
import t from 'tap';
import { setImmediate as yieldToIo } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { connect } from 'node:net';
import WebSocket from 'ws';
import { decodeServerMessage, encodeClientMessage } from '../../protocol/codec.js';
import { EchoEngine } from '../../server/engines/echo/engine.js';
import type { Engine, TurnEvent, TurnRequest } from '../../server/engines/types.js';
import { startTestServer, TRANSPORTS } from '../helpers/server.js';

const MiB = 1 << 20;
const DELTA = 'x'.repeat(16 * 1024);
const FLOOD_BYTES = 64 * MiB;
/**
 * Whole-process memory moves by ±15 MiB between collections here (the test's own client shares
 * the process; CI once saw +16.8 MiB on a correct server), while a server that buffered the flood
 * would hold all 64 MiB of it. Half the flood separates the two without riding on that noise.
 */
const BOUNDED = FLOOD_BYTES / 2;

/** Streams FLOOD_BYTES of deltas as fast as the event loop allows. */
class FloodEngine extends EchoEngine {
  emitted = 0;
  finished = false;
  override async run(batch: TurnRequest[], emit: (turnId: string, event: TurnEvent) => void): Promise<void> {
    const turn = batch[0]!;
    while (this.emitted < FLOOD_BYTES && !turn.signal.aborted) {
      emit(turn.id, { type: 'delta', text: DELTA });
      this.emitted += DELTA.length;
      await yieldToIo();
    }
    emit(turn.id, { type: 'done', usage: { promptTokens: 1, completionTokens: 1 }, finish: turn.signal.aborted ? 'cancelled' : 'stop' });
    this.finished = true;
  }
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Memory still held after a full collection: what the server retains, not garbage it made. */
function retained(): number {
  gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.external + usage.arrayBuffers;
}

for (const transport of TRANSPORTS) {
  t.test(`a client that stops reading is closed with 1008 over ${transport}`, async (t) => {
    const engine = new FloodEngine({ tokenDelayMs: 0, capacity: 4 });
    // A grace longer than the stall, so a busy machine cannot drop the socket before the client reads its close frame.
    const server = await startTestServer({ transport, maxBufferedBytes: MiB, idleTimeoutMs: 0, closeGraceMs: 60_000 }, { engine: engine as Engine });
    t.teardown(() => server.close(0));
    const socket = new WebSocket(`${server.wsUrl}/v1/stream`);
    let received = 0;
    let sawReady = false;
    socket.on('message', (data: Buffer) => {
      received += data.length;
      if (!sawReady && decodeServerMessage(data).type === 'ready') sawReady = true;
    });
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(encodeClientMessage({ type: 'hello', codec: 'pcm16', sampleRate: 16000 }));
    while (!sawReady) await yieldToIo();
    const raw = (socket as unknown as { _socket: import('node:net').Socket })._socket;
    const before = retained();
    raw.pause();
    socket.send(encodeClientMessage({ type: 'text', text: 'talk forever' }));
    while (!engine.finished) await new Promise((r) => setTimeout(r, 20));
    const growth = retained() - before;
    raw.resume();
    const code = await closed;
    t.equal(code, 1008, 'closed with 1008 (policy: client is not reading)');
    t.ok(received < 24 * MiB, `the client got ${(received / MiB).toFixed(1)} MiB of ${FLOOD_BYTES / MiB} MiB: the rest was never buffered`);
    t.ok(growth < BOUNDED, `the server held ${(growth / MiB).toFixed(1)} MiB more while the client was stalled`);
    t.equal((await fetch(`${server.url}/health`)).status, 200, 'server healthy');
  });
}

for (const transport of TRANSPORTS) {
  t.test(`a REST streaming reader that stops reading is dropped and its turn cancelled over ${transport}`, async (t) => {
    const engine = new FloodEngine({ tokenDelayMs: 0, capacity: 4 });
    const server = await startTestServer({ transport, maxBufferedBytes: MiB }, { engine: engine as Engine });
    t.teardown(() => server.close(0));
    const { port } = new URL(server.url);
    const body = JSON.stringify({ model: 'earshot-echo-test-engine', stream: true, messages: [{ role: 'user', content: 'talk forever' }] });
    const socket = connect(Number(port), '127.0.0.1');
    let received = 0;
    socket.on('data', (chunk) => (received += chunk.length));
    const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    while (received === 0) await yieldToIo();
    const before = retained();
    socket.pause();
    while (!engine.finished) await new Promise((r) => setTimeout(r, 20));
    const growth = retained() - before;
    t.ok(engine.emitted < FLOOD_BYTES, `the engine stopped after ${(engine.emitted / MiB).toFixed(1)} of ${FLOOD_BYTES / MiB} MiB: the turn was cancelled`);
    t.ok(growth < BOUNDED, `the server held ${(growth / MiB).toFixed(1)} MiB more while the reader was stalled`);
    socket.resume();
    await ended;
    t.ok(received < 24 * MiB, `the reader got ${(received / MiB).toFixed(1)} MiB before the server dropped it`);
    t.equal((await fetch(`${server.url}/health`)).status, 200, 'server healthy');
  });
}
