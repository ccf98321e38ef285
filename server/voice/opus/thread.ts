/**
 * The Opus encoding thread of spoken replies: one encoder per stream (a session's voice), 24 kHz
 * PCM in, 20 ms packets out, answered in the order the jobs came. Off the event loop because
 * opusscript costs ~0.2 ms a packet and a synthesised sentence arrives as seconds of audio at
 * once: encoded on the loop it stalled every session's frames behind it (bench/voice-lag.ts).
 */
import { parentPort } from 'node:worker_threads';
import { OpusEncoder } from '../../audio/opus-encoder.js';
import { runInBackground } from '../../threads.js';
import type { OpusJob, OpusResult } from './messages.js';

runInBackground();

const encoders = new Map<number, OpusEncoder>();

function run(job: Exclude<OpusJob, { type: 'open' | 'close' | 'stop' }>): OpusResult {
  const encoder = encoders.get(job.stream);
  if (!encoder) return { stream: job.stream, error: 'no such stream' };
  try {
    return { stream: job.stream, packets: job.type === 'encode' ? encoder.encode(job.pcm) : encoder.flush() };
  } catch (err) {
    return { stream: job.stream, error: (err as Error).message };
  }
}

parentPort!.on('message', (job: OpusJob) => {
  switch (job.type) {
    case 'open':
      encoders.set(job.stream, new OpusEncoder(job.rate));
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
});
