/**
 * An audio thread: decodes and segments the streams pinned to it (AudioStreams), reading
 * packets from its ring in order and posting back only VAD events. With Silero (--vad hybrid or
 * silero) the thread has its own batched confirmer for its streams: one per thread, as one per shard.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { BatchConfirmer } from '../vad/confirmer.js';
import { STOP_THREAD, type StreamSpec, type ThreadData, type ThreadEvent } from './messages.js';
import { RECORD_CONTROL_CLOSE, RECORD_CONTROL_FLUSH, RECORD_CONTROL_OPEN, RingReader } from './ring.js';
import { AudioStreams } from './streams.js';

const data = workerData as ThreadData;
const reader = new RingReader(data.ring);
const confirmer = data.silero ? await BatchConfirmer.start(data.silero) : undefined;
const text = new TextDecoder();

function post(event: ThreadEvent): void {
  if (event.type === 'speech_stopped') parentPort!.postMessage(event, [event.audio.buffer as ArrayBuffer]);
  else parentPort!.postMessage(event);
}

const streams = new AudioStreams(async () => confirmer, post);

// Atomics.waitAsync holds no handle on the event loop; this timer keeps the thread alive between frames.
setInterval(() => undefined, 1 << 30);

// The pool's stop: Silero's inference thread must release its model before this thread ends (see BatchConfirmer.close).
parentPort!.once('message', (message: unknown) => {
  if (message === STOP_THREAD) void (confirmer?.close() ?? Promise.resolve()).finally(() => process.exit(0));
});

/** Records handled between turns of this thread's event loop, so Silero's verdicts come in during a burst too. */
const YIELD_EVERY = 64;
let sinceYield = 0;

for (;;) {
  const record = reader.next();
  if (!record) {
    sinceYield = 0;
    await reader.waitForData(1000);
    continue;
  }
  if (confirmer && ++sinceYield === YIELD_EVERY) {
    sinceYield = 0;
    await new Promise((resolve) => setImmediate(resolve));
  }
  const { stream, kind, bytes, start, end } = record;
  if (kind >= 0) {
    streams.push(stream, bytes, start, end);
    reader.release();
    continue;
  }
  const spec = kind === RECORD_CONTROL_OPEN ? (JSON.parse(text.decode(bytes.subarray(start, end))) as StreamSpec) : undefined;
  if (kind === RECORD_CONTROL_FLUSH) streams.flush(stream);
  else if (kind === RECORD_CONTROL_CLOSE) streams.close(stream);
  reader.release();
  // Opening awaits the decoder's WASM; later records for this thread wait behind it, in order.
  if (spec) await streams.open(stream, spec);
}
