/**
 * The voice stage's encoding thread (Opus, MP3): a stream's packets come back in order and are the
 * same bytes as encoding on the spot; a stream whose encoder is gone answers with an error
 * instead of never answering (the native door waits in line for each answer).
 */
import t from 'tap';
import { Mp3Encoder } from '../../server/audio/mp3-encoder.js';
import { OpusEncoder } from '../../server/audio/opus-encoder.js';
import { createLogger } from '../../server/observability/log.js';
import { EncodingThread, type EncodingStream } from '../../server/voice/encoding/threads.js';

const answer = (run: (done: (r: Uint8Array[] | Error) => void) => void) => new Promise<Uint8Array[] | Error>((resolve) => run(resolve));

/** 1.3 s of a 24 kHz tone with a little noise: several packets and a partial frame at the end. */
const pcm = Int16Array.from({ length: 31_200 }, (_, i) => Math.round(Math.sin(i / 7) * 6000 + ((i * 7919) % 101) * 10));

t.test('packets in order, the same as encoding on the spot, over several streams at once', async (t) => {
  const thread = new EncodingThread(createLogger('silent'));
  t.teardown(() => thread.stop());
  const local = new OpusEncoder(24_000);
  const expected = [...local.encode(pcm.subarray(0, 10_000)), ...local.encode(pcm.subarray(10_000)), ...local.flush()];
  local.close();
  const streams: EncodingStream[] = [thread.open(24_000), thread.open(24_000)];
  const answered = Promise.all(
    streams.map(async (stream) => {
      const parts = await Promise.all([
        answer((done) => stream.push(pcm.subarray(0, 10_000), done)),
        answer((done) => stream.push(pcm.subarray(10_000), done)),
        answer((done) => stream.flush(done)),
      ]);
      stream.close();
      return parts.flatMap((p) => (p instanceof Error ? [] : p));
    }),
  );
  // A draining server counts these as speech still going out (VoiceStage.speaking).
  t.equal(thread.unanswered, 6, 'six jobs owed until the thread answers them');
  const results = await answered;
  t.equal(thread.unanswered, 0, 'none once answered');
  for (const packets of results) {
    t.equal(packets.length, expected.length, `${expected.length} packets (65 frames of 20 ms, the last padded)`);
    t.ok(packets.every((p, i) => Buffer.from(p).equals(Buffer.from(expected[i]!))), 'byte for byte');
  }
});

t.test('a stream whose encoder went with its thread answers with an error', async (t) => {
  const thread = new EncodingThread(createLogger('silent'));
  const stream = thread.open(48_000);
  t.notOk((await answer((done) => stream.push(pcm, done))) instanceof Error);
  await thread.stop();
  const late = await answer((done) => stream.push(pcm, done));
  t.ok(late instanceof Error, `answered: ${(late as Error).message}`);
  await thread.stop();
});

t.test('MP3 streams (REST speech): the same bytes as encoding on the spot, in order', async (t) => {
  const thread = new EncodingThread(createLogger('silent'));
  t.teardown(() => thread.stop());
  const local = await Mp3Encoder.create();
  const expected = Buffer.concat([local.encode(pcm.subarray(0, 10_000)), local.encode(pcm.subarray(10_000)), local.end()]);
  const stream = thread.openMp3();
  const parts = await Promise.all([
    answer((done) => stream.push(pcm.subarray(0, 10_000), done)),
    answer((done) => stream.push(pcm.subarray(10_000), done)),
    answer((done) => stream.flush(done)),
  ]);
  stream.close();
  t.notOk(parts.some((p) => p instanceof Error), 'every call answered with bytes');
  const bytes = Buffer.concat(parts.flatMap((p) => (p instanceof Error ? [] : p)));
  t.ok(bytes.length > 1000 && bytes.equals(expected), `${bytes.length} bytes, byte for byte`);
});
