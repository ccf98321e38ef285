/**
 * Turn detection per --vad mode (issue 15), one bounded run on localhost:
 * (1) server CPU per stream on the same real-time Opus sessions for webrtc, hybrid, silero
 *     batched, and silero one stream at a time (--vad-max-batch 1, the peers' way);
 * (2) sessions held (p99 frame-to-VAD lag < 30 ms) by hybrid next to webrtc, on a short ramp;
 * (3) false turns on the noise clips and turn boundaries on real speech, per mode, in-process.
 * Usage: node --import tsx bench/vad.ts [--sessions 40] [--steps 50,100,200]
 */
import { cpus, loadavg } from 'node:os';
import { joinClips } from '../server/audio/clip.js';
import { BatchConfirmer, defaultModelPath, type Confirmer } from '../server/vad/confirmer.js';
import { loadFvad } from '../server/vad/fvad.js';
import { segmenterFor } from '../server/vad/judging.js';
import type { SegmentEvent, VadMode } from '../server/vad/segmenter.js';
import { NOISE_CLIPS, noiseClip } from '../test/fixtures/noise.js';
import { speechFixture, type SpeechFixture } from '../test/fixtures/speech.js';
import { runRamp } from './capacity.js';
import { voiceOf } from './load.js';
import { round } from './stats.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : fallback;
};
const SESSIONS = Number(arg('sessions', '40'));
const STEPS = arg('steps', '50,100,200').split(',').map(Number);
const WARMUP_MS = 3000;
const WINDOW_MS = 6000;
const log = (line: string) => process.stdout.write(`${line}\n`);

const MODES: { label: string; config: Record<string, unknown> }[] = [
  { label: 'webrtc', config: { vad: 'webrtc', logLevel: 'error' } },
  { label: 'hybrid', config: { vad: 'hybrid', logLevel: 'error' } },
  { label: 'silero (batched)', config: { vad: 'silero', logLevel: 'error' } },
  { label: 'silero one stream at a time', config: { vad: 'silero', vadMaxBatch: 1, logLevel: 'error' } },
];

/** Pushes a whole recording faster than real time, never more than a second ahead of Silero. */
async function segment(confirmer: Confirmer, mode: VadMode, samples: Float32Array): Promise<SegmentEvent[]> {
  const events: SegmentEvent[] = [];
  const segmenter = segmenterFor(await loadFvad(), { mode, aggressiveness: 3, threshold: 0.5 }, { prefixPaddingMs: 300, silenceMs: 500, minSpeechMs: 200, maxUtteranceMs: 30_000 }, confirmer, (e) =>
    events.push(e),
  );
  const idle = () => new Promise((r) => setTimeout(r, 2));
  for (let at = 0; at < samples.length; at += 320) {
    segmenter.push(samples.subarray(at, at + 320));
    if (at % 16_000 === 0) while (!segmenter.settled) await idle();
  }
  while (!segmenter.settled) await idle();
  segmenter.close();
  return events;
}

async function accuracy(): Promise<void> {
  const confirmer = await BatchConfirmer.start({ modelPath: defaultModelPath(), maxBatch: 64 });
  const speech: SpeechFixture[] = [
    ...(await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((id) => speechFixture(id)))),
    ...(await Promise.all([1, 2, 3].map((id) => speechFixture(id, { noisy: true })))),
  ];
  const clips = await Promise.all(NOISE_CLIPS.map((name) => noiseClip(name)));
  log('(3) false turns on the noise set (each clip + 1 s of silence) and boundaries on real speech (8 clean + 3 noisy fixtures, 33 sentences)');
  for (const mode of ['webrtc', 'hybrid', 'silero'] as const) {
    const falseTurns = await Promise.all(
      clips.map(async (c) => (await segment(confirmer, mode, joinClips([c.samples16k, new Float32Array(16_000)]))).filter((e) => e.type === 'speech_stopped').length),
    );
    let sentences = 0;
    let matched = 0;
    const deviations: number[] = [];
    for (const f of speech) {
      const stops = (await segment(confirmer, mode, f.samples16k)).flatMap((e) => (e.type === 'speech_stopped' ? [e] : []));
      sentences += f.truth.length;
      if (stops.length !== f.truth.length) continue;
      matched += f.truth.length;
      stops.forEach((s, i) => deviations.push(Math.abs(s.startMs - f.truth[i]!.startMs), Math.abs(s.endMs - f.truth[i]!.endMs)));
    }
    deviations.sort((a, b) => a - b);
    log(
      `  ${mode.padEnd(7)} false turns: ${NOISE_CLIPS.map((n, i) => `${n} ${falseTurns[i]}`).join(', ')}; ` +
        `sentences as one turn each: ${matched}/${sentences}; boundary error median ${deviations[deviations.length >> 1]} ms, max ${deviations.at(-1)} ms`,
    );
  }
  await confirmer.close();
}

async function main(): Promise<void> {
  log(`earshot bench/vad.ts on ${cpus().length} × ${cpus()[0]?.model}, node ${process.version}, load average ${loadavg().map((x) => round(x)).join(' ')}`);
  const fixtures = await Promise.all([0, 1, 2, 3].map((id) => speechFixture(id)));
  const voices = fixtures.map((f) => voiceOf(f.opusPackets));
  log(`(1) server CPU per stream, ${SESSIONS} real-time Opus sessions (speech fixtures 0-3 on loop), ${WINDOW_MS / 1000} s window after ${WARMUP_MS / 1000} s warm-up`);
  const perFrame = new Map<string, number>();
  for (const { label, config } of MODES) {
    const result = await runRamp(voices, { transport: 'uws', steps: [SESSIONS], warmupMs: WARMUP_MS, windowMs: WINDOW_MS, config, log: (line) => log(`${line}  [${label}]`) });
    const step = result.steps[0]!;
    perFrame.set(label, step.serverUsPerFrame);
  }
  const webrtc = perFrame.get('webrtc')!;
  log(`  µs of server CPU per 20 ms frame: ${[...perFrame].map(([label, us]) => `${label} ${us} (${round(us / webrtc)}× webrtc)`).join(', ')}`);
  log(`(2) sessions held (p99 frame-to-VAD lag < 30 ms), steps ${STEPS.join(', ')}`);
  for (const label of ['webrtc', 'hybrid']) {
    const { config } = MODES.find((m) => m.label === label)!;
    const result = await runRamp(voices, { transport: 'uws', steps: STEPS, warmupMs: WARMUP_MS, windowMs: WINDOW_MS, config, log: (line) => log(`${line}  [${label}]`) });
    log(`  ${label}: held ${result.held}`);
  }
  await accuracy();
}

await main();
