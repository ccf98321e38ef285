/**
 * Judges spoken output in tests: Debian's offline recogniser (pocketsphinx + pocketsphinx-en-us)
 * transcribes audio back to words, so a test can check that a voice said its text. Recognition
 * of synthetic voices is rough (word error rate 0.1-0.25 on Flite's voices when measured), so compare
 * loosely: a few key words of the text must be heard, not every word.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { resample } from '../../server/audio/resample.js';
import { encodeWav16 } from '../../server/audio/wav.js';

const run = promisify(execFile);
const RECOGNISER_RATE = 16_000;
/** Narrower search than the defaults: a third less CPU, the same words on Flite and espeak-ng speech. */
const FAST_SEARCH = ['-maxhmmpf', '3000', '-maxwpf', '5', '-pl_window', '10', '-topn', '2'];

/** Float [-1, 1] or 16-bit samples at `sampleRate` → the words pocketsphinx hears, lower case. */
export async function transcribe(samples: Float32Array | Int16Array, sampleRate: number): Promise<string> {
  const floats = samples instanceof Int16Array ? Float32Array.from(samples, (s) => s / 32768) : samples;
  const dir = await mkdtemp(join(tmpdir(), 'earshot-hear-'));
  try {
    const path = join(dir, 'speech.wav');
    await writeFile(path, encodeWav16(resample(floats, sampleRate, RECOGNISER_RATE), RECOGNISER_RATE));
    const { stdout } = await run('pocketsphinx_continuous', ['-infile', path, '-logfn', '/dev/null', ...FAST_SEARCH], { maxBuffer: 1 << 20 });
    return stdout.replace(/\s+/g, ' ').trim().toLowerCase();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The key words (lower case) that the transcript of `samples` lacks; empty means all were heard. */
export async function unheard(samples: Float32Array | Int16Array, sampleRate: number, keyWords: string[]): Promise<{ missing: string[]; heard: string }> {
  const heard = await transcribe(samples, sampleRate);
  const words = new Set(heard.split(' '));
  return { missing: keyWords.map((w) => w.toLowerCase()).filter((w) => !words.has(w)), heard };
}

/**
 * The median pitch (Hz) of the voiced 40 ms frames of `samples`, by autocorrelation over
 * 70-400 Hz: tells a low voice from a high one (Flite's awb from slt) without a recogniser.
 */
export function medianPitch(samples: Int16Array, sampleRate: number): number {
  const frame = Math.round(sampleRate * 0.04);
  const minLag = Math.floor(sampleRate / 400);
  const maxLag = Math.ceil(sampleRate / 70);
  const pitches: number[] = [];
  for (let at = 0; at + frame + maxLag <= samples.length; at += frame) {
    let energy = 0;
    for (let i = at; i < at + frame; i++) energy += samples[i]! * samples[i]!;
    if (energy / frame < 500 * 500) continue;
    let best = 0;
    let bestLag = 0;
    for (let lag = minLag; lag <= maxLag; lag++) {
      let sum = 0;
      for (let i = at; i < at + frame; i++) sum += samples[i]! * samples[i + lag]!;
      if (sum > best) [best, bestLag] = [sum, lag];
    }
    // Only clearly periodic frames: correlation at the best lag near the frame's own energy.
    if (bestLag > 0 && best > 0.5 * energy) pitches.push(sampleRate / bestLag);
  }
  pitches.sort((a, b) => a - b);
  return pitches[Math.floor(pitches.length / 2)] ?? 0;
}
