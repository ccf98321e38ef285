/**
 * An audio thread: decodes and segments the streams pinned to it, reading packets from its
 * ring in order and posting back only VAD events. Runs the same Decoder and VadSegmenter as
 * the event-loop path, so segmentation is identical. With Silero (--vad hybrid or silero) the
 * thread has its own batched confirmer for its streams: one per thread, as one per shard.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EarshotError } from '../../protocol/errors.js';
import type { Decoder } from '../audio/decoder.js';
import { createDecoder } from '../audio/select.js';
import { BatchConfirmer } from '../vad/confirmer.js';
import { loadFvad } from '../vad/fvad.js';
import { segmenterFor } from '../vad/judging.js';
import type { SegmentEvent, VadSegmenter } from '../vad/segmenter.js';
import { STOP_THREAD, type StreamSpec, type ThreadData, type ThreadEvent } from './messages.js';
import { RECORD_CONTROL_CLOSE, RECORD_CONTROL_FLUSH, RECORD_CONTROL_OPEN, RingReader } from './ring.js';

interface Stream {
  decoder: Decoder;
  segmenter: VadSegmenter;
}

const data = workerData as ThreadData;
const reader = new RingReader(data.ring);
const confirmer = data.silero ? await BatchConfirmer.start(data.silero) : undefined;
const streams = new Map<number, Stream>();
const text = new TextDecoder();

function post(event: ThreadEvent): void {
  if (event.type === 'speech_stopped') parentPort!.postMessage(event, [event.audio.buffer as ArrayBuffer]);
  else parentPort!.postMessage(event);
}

function emit(stream: number, event: SegmentEvent): void {
  if (event.type === 'speech_started') post({ stream, type: 'speech_started', atMs: event.atMs });
  else if (event.type === 'failed') post({ stream, type: 'failed', message: event.message });
  else post({ stream, type: 'speech_stopped', atMs: event.atMs, startMs: event.startMs, endMs: event.endMs, reason: event.reason, audio: event.audio });
}

async function open(id: number, spec: StreamSpec): Promise<void> {
  try {
    const decoder = await createDecoder(spec.audio);
    streams.set(id, { decoder, segmenter: segmenterFor(await loadFvad(), spec.judging, spec.segmenter, confirmer, (event) => emit(id, event)) });
  } catch (err) {
    const error = EarshotError.from(err);
    post({ stream: id, type: 'error', code: error.code, message: error.message });
  }
}

function audio(id: number, packet: Uint8Array): void {
  const stream = streams.get(id);
  if (!stream) return;
  try {
    stream.segmenter.push(stream.decoder.decode(packet));
  } catch (err) {
    const error = EarshotError.from(err);
    post({ stream: id, type: 'error', code: error.code, message: error.message });
  }
}

function control(id: number, kind: number, payload: Uint8Array): StreamSpec | undefined {
  const stream = streams.get(id);
  if (kind === RECORD_CONTROL_OPEN) return JSON.parse(text.decode(payload)) as StreamSpec;
  if (!stream) return undefined;
  if (kind === RECORD_CONTROL_FLUSH) stream.segmenter.flush(() => post({ stream: id, type: 'flushed' }));
  else if (kind === RECORD_CONTROL_CLOSE) {
    stream.decoder.close();
    stream.segmenter.close();
    streams.delete(id);
  }
  return undefined;
}

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
  const { stream, kind, payload } = record;
  if (kind >= 0) {
    audio(stream, payload);
    reader.release();
    continue;
  }
  const spec = control(stream, kind, payload);
  reader.release();
  // Opening awaits the decoder's WASM; later records for this thread wait behind it, in order.
  if (spec) await open(stream, spec);
}
