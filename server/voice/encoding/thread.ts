/**
 * The encoding thread of spoken replies (Opus) and REST speech (MP3): one encoder per stream (a
 * session's voice, a REST response), 24 kHz PCM in, 20 ms packets (or MP3 bytes) out, answered
 * in the order the jobs came. Off the event loop because opusscript costs ~0.2 ms a packet and
 * a synthesised sentence arrives as seconds of audio at once: encoded on the loop it stalled
 * every session's frames behind it (bench/voice-lag.ts). MP3 for the same reason (LAME: ~30 ms
 * for a 3 s sentence).
 */
import { parentPort } from 'node:worker_threads';
import { Mp3Encoder } from '../../audio/mp3-encoder.js';
import { OpusEncoder } from '../../audio/opus-encoder.js';
import { runInBackground } from '../../threads.js';
import type { EncodingJob, EncodingResult } from './messages.js';

runInBackground();

/** What a stream encodes with: chunks of bytes out (Opus packets, or MP3 bytes as one chunk). */
interface StreamEncoder {
  encode(pcm: Int16Array): Uint8Array[];
  flush(): Uint8Array[];
  close(): void;
}

async function mp3Stream(): Promise<StreamEncoder> {
  const mp3 = await Mp3Encoder.create();
  return { encode: (pcm) => [mp3.encode(pcm)], flush: () => [mp3.end()], close: () => {} };
}

const encoders = new Map<number, StreamEncoder>();

function run(job: Exclude<EncodingJob, { type: 'open' | 'close' | 'stop' }>): EncodingResult {
  const encoder = encoders.get(job.stream);
  if (!encoder) return { stream: job.stream, error: 'no such stream' };
  try {
    return { stream: job.stream, packets: job.type === 'encode' ? encoder.encode(job.pcm) : encoder.flush() };
  } catch (err) {
    return { stream: job.stream, error: (err as Error).message };
  }
}

async function handle(job: EncodingJob): Promise<void> {
  switch (job.type) {
    case 'open':
      encoders.set(job.stream, 'mp3' in job ? await mp3Stream() : new OpusEncoder(job.rate));
      return;
    case 'close':
      encoders.get(job.stream)?.close();
      encoders.delete(job.stream);
      return;
    case 'stop':
      for (const encoder of encoders.values()) encoder.close();
      process.exit(0);
      return;
    default: {
      const result = run(job);
      parentPort!.postMessage(result, 'packets' in result ? result.packets.map((p) => p.buffer as ArrayBuffer) : []);
    }
  }
}

// One job at a time, in order: opening an MP3 encoder waits for its WASM, and the jobs after it wait too.
let jobs = Promise.resolve();
parentPort!.on('message', (job: EncodingJob) => {
  // Only opening can fail (run() answers its own errors): the stream's jobs then answer 'no such stream'.
  jobs = jobs.then(() => handle(job)).catch(() => {});
});
