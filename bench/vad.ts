/**
 * Turn detection per --vad mode (issue 15), one bounded run (about 7 minutes; 13 with --rounds 3), in parts:
 * cpu      decode + VAD CPU time per stream, in this process, for webrtc, hybrid, silero batched
 *          and silero one stream at a time (--vad-max-batch 1, the peers' way): STREAMS Opus
 *          streams fed a 20 ms frame each every 20 ms (real time, so Silero's batches hold what
 *          its ticks gather from live sessions), CPU time of the whole process (the inference
 *          thread included) over the frames fed and their verdicts; plus Silero chunks judged
 *          per stream-second and inference calls per second with their mean chunks (counts,
 *          independent of the machine's load);
 * server   server CPU per stream on the same real-time Opus sessions against the real server;
 * held     sessions held (p99 frame-to-VAD lag < 30 ms) by hybrid next to webrtc, on a short ramp
 *          (bench/run.ts --only a --sweep 'uws,uws --vad webrtc' runs the full ramp);
 * accuracy false turns on the noise clips and turn boundaries on real speech, per mode.
 * Usage: node --import tsx bench/vad.ts [--parts cpu,server,held,accuracy] [--modes webrtc,hybrid,silero,silero-1 (cpu, server)]
 *        [--streams 32] [--seconds 10] [--pace real|rounds (cpu)] [--sessions 40] [--rounds 1 (cpu, server)] [--warmup-s 20 (cpu, server), 3 (held)] [--window-s 6 (server, held)] [--steps 50,100,200] [--vad-model FILE] [--vad-threshold P] (cpu, accuracy; defaults: the server's)
 * On a busy machine, instruction counts are the repeatable per-frame measure: run the cpu part of
 * one mode with --pace rounds (each round judged before the next, so the batches do not depend on
 * the clock, and spot-checks gain nothing from waiting) under `valgrind
 * --tool=callgrind` at --seconds N and at --seconds 0 (the same start-up and warm-up); the
 * difference over N × 50 × streams is instructions per stream-frame.
 */
import { cpus, loadavg } from 'node:os';
import { joinClips } from '../server/audio/clip.js';
import { createDecoder } from '../server/audio/select.js';
import { defaultConfig } from '../server/config.js';
import { BatchConfirmer, defaultModelPath, type Confirmer } from '../server/vad/confirmer.js';
import { loadFvad } from '../server/vad/fvad.js';
import { segmenterFor } from '../server/vad/judging.js';
import type { SegmentEvent, VadMode } from '../server/vad/segmenter.js';
import { NOISE_CLIPS, noiseClip } from '../test/fixtures/noise.js';
import { tappedConfirmer } from '../test/helpers/confirmer.js';
import { speechFixture, type SpeechFixture } from '../test/fixtures/speech.js';
import { runRamp } from './capacity.js';
import { voiceOf } from './load.js';
import { mean, round } from './stats.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : fallback;
};
const PARTS = new Set(arg('parts', 'cpu,server,held,accuracy').split(','));
const STREAMS = Number(arg('streams', '32'));
const SECONDS = Number(arg('seconds', '10'));
const SESSIONS = Number(arg('sessions', '40'));
/** cpu and server parts: the modes run this many times each, alternating. */
const ROUNDS = Number(arg('rounds', '1'));
const STEPS = arg('steps', '50,100,200').split(',').map(Number);
const MODEL = arg('vad-model', defaultModelPath());
/** --pace rounds: each round of frames judged before the next, whatever the clock says (repeatable under callgrind). */
const REAL_TIME = arg('pace', 'real') === 'real';
const THRESHOLD = Number(arg('vad-threshold', String(defaultConfig().vadThreshold)));
/**
 * Load before a measure, not counted (--warmup-s overrides; cpu and server 20 s, held 3 s). For
 * the first ~10-15 s of hybrid, V8 keeps deoptimising and recompiling the inference thread's
 * `run` (--trace-deopt: "weak objects", 26-40 ms of TurboFan per compile), and its platform
 * threads then spend ~12% of the process's CPU compiling: a 3 s warm-up measured start-up, not
 * the steady state a serving server lives in (bench/RESULTS.md). The held ramp measures lag, not
 * CPU per frame, and keeps the short one.
 */
const warmupMs = (fallbackS: number) => Number(arg('warmup-s', String(fallbackS))) * 1000;
const WINDOW_MS = Number(arg('window-s', '6')) * 1000;
const log = (line: string) => process.stdout.write(`${line}\n`);

const MODES: { key: string; label: string; config: Record<string, unknown> }[] = [
  { key: 'webrtc', label: 'webrtc', config: { vad: 'webrtc', logLevel: 'error' } },
  { key: 'hybrid', label: 'hybrid', config: { vad: 'hybrid', logLevel: 'error' } },
  { key: 'silero', label: 'silero (batched)', config: { vad: 'silero', logLevel: 'error' } },
  { key: 'silero-1', label: 'silero one stream at a time', config: { vad: 'silero', vadMaxBatch: 1, logLevel: 'error' } },
];

/** A confirmer that counts the chunks its streams push. */
function counted(confirmer: BatchConfirmer): { confirmer: Confirmer; chunks: () => number; calls: () => number } {
  let chunks = 0;
  return {
    confirmer: tappedConfirmer(confirmer, () => chunks++),
    chunks: () => chunks,
    calls: () => confirmer.counts.calls,
  };
}

const CPU_MODES: { key: string; label: string; mode: VadMode; maxBatch: number }[] = [
  { key: 'webrtc', label: 'webrtc', mode: 'webrtc', maxBatch: 64 },
  { key: 'hybrid', label: 'hybrid', mode: 'hybrid', maxBatch: 64 },
  { key: 'silero', label: 'silero (batched)', mode: 'silero', maxBatch: 64 },
  { key: 'silero-1', label: 'silero one stream at a time', mode: 'silero', maxBatch: 1 },
];
const MODE_KEYS = new Set(arg('modes', CPU_MODES.map((m) => m.key).join(',')).split(','));

const WARMUP_FRAMES = warmupMs(20) / 20;

/** One mode of part cpu: decode + VAD CPU per stream-frame, in this process (see the header); logs the Silero counts. */
async function vadCpuOnce(fixtures: SpeechFixture[], { label, mode, maxBatch }: (typeof CPU_MODES)[number]): Promise<number> {
  const frames = (SECONDS * 1000) / 20;
  const silero = mode === 'webrtc' ? undefined : counted(await BatchConfirmer.start({ modelPath: MODEL, maxBatch }));
  const streams = await Promise.all(
    Array.from({ length: STREAMS }, async (_, i) => {
      const packets = fixtures[i % fixtures.length]!.opusPackets;
      return {
        packets,
        offset: Math.floor((i / STREAMS) * packets.length),
        decoder: await createDecoder({ codec: 'opus', sampleRate: 16_000, channels: 1 }),
        segmenter: segmenterFor(await loadFvad(), { mode, aggressiveness: 3, threshold: THRESHOLD }, { prefixPaddingMs: 300, silenceMs: 500, minSpeechMs: 200, maxUtteranceMs: 30_000 }, silero?.confirmer, () => undefined),
      };
    }),
  );
  // The warm-up (JIT, WASM, the model's first calls) is not counted.
  let before = process.cpuUsage();
  let chunksBefore = 0;
  let callsBefore = 0;
  const settled = () => Promise.all(streams.map((s) => new Promise<void>((resolve) => s.segmenter.settle(resolve))));
  const start = performance.now() + WARMUP_FRAMES * 20;
  for (let f = -WARMUP_FRAMES; f < frames; f++) {
    if (f === 0) {
      await settled();
      before = process.cpuUsage();
      chunksBefore = silero?.chunks() ?? 0;
      callsBefore = silero?.calls() ?? 0;
    }
    // Real time: a round every 20 ms (back to back if behind), as live sessions send.
    const due = start + f * 20 - performance.now();
    if (REAL_TIME && due > 0) await new Promise((resolve) => setTimeout(resolve, due));
    for (const s of streams) s.segmenter.push(s.decoder.decode(s.packets[(s.offset + f + WARMUP_FRAMES) % s.packets.length]!));
    if (!REAL_TIME && silero) await settled();
  }
  // The verdicts still out (all of them, if one stream at a time fell behind) are part of the cost.
  await settled();
  const used = process.cpuUsage(before);
  const usPerFrame = (used.user + used.system) / (frames * STREAMS);
  for (const s of streams) {
    s.decoder.close();
    s.segmenter.close();
  }
  await silero?.confirmer.close();
  const judged = (silero?.chunks() ?? 0) - chunksBefore;
  const calls = (silero?.calls() ?? 0) - callsBefore;
  const chunks = silero
    ? `, Silero chunks per stream-second ${round(judged / (STREAMS * SECONDS), 1)} of ${round(1000 / 32, 1)}, ${round(calls / SECONDS, 1)} calls per second of ${round(judged / calls, 1)} chunks`
    : '';
  // --seconds 0 runs start-up and warm-up only (the baseline of a callgrind difference): nothing to divide.
  if (frames > 0) log(`  ${label.padEnd(28)} ${round(usPerFrame, 1)} µs of CPU per stream per 20 ms frame${chunks}`);
  return usPerFrame;
}

/** Part cpu: each mode in turn, the modes alternating round after round (--rounds) so the box's drift spreads over all of them. */
async function vadCpu(): Promise<void> {
  const fixtures = await Promise.all([0, 1, 2, 3].map((id) => speechFixture(id)));
  log(`(cpu) decode + VAD CPU time per stream, ${STREAMS} Opus streams × ${SECONDS} s after ${WARMUP_FRAMES / 50} s of warm-up (speech fixtures 0-3 on loop, staggered), one 20 ms frame per stream ${REAL_TIME ? 'every 20 ms (real time)' : 'per round, each round judged before the next'}, every verdict in before the CPU time is read`);
  const results = new Map<string, number[]>();
  for (let r = 0; r < ROUNDS; r++) {
    for (const m of CPU_MODES.filter((m) => MODE_KEYS.has(m.key))) results.set(m.label, [...(results.get(m.label) ?? []), await vadCpuOnce(fixtures, m)]);
  }
  const webrtc = results.get('webrtc');
  if (SECONDS > 0 && (ROUNDS > 1 || webrtc)) log(`  ${roundsSummary('µs of CPU per stream per 20 ms frame', results)}`);
}

/** Each mode's mean over the rounds, its range, and its ratio to webrtc's mean. */
function roundsSummary(measure: string, results: Map<string, number[]>): string {
  const average = (xs: number[]) => round(mean(xs), 1);
  const webrtc = results.has('webrtc') ? average(results.get('webrtc')!) : undefined;
  const spread = (xs: number[]) => (xs.length > 1 ? ` [${round(Math.min(...xs), 1)}–${round(Math.max(...xs), 1)}]` : '');
  return (
    `${measure}${ROUNDS > 1 ? `, mean of ${ROUNDS} rounds [range]` : ''}: ` +
    [...results].map(([label, xs]) => `${label} ${average(xs)}${spread(xs)}${webrtc ? ` (${round(average(xs) / webrtc)}× webrtc)` : ''}`).join(', ')
  );
}

/** Pushes a whole recording faster than real time, never more than a second ahead of Silero. */
async function segment(confirmer: Confirmer, mode: VadMode, samples: Float32Array): Promise<SegmentEvent[]> {
  const events: SegmentEvent[] = [];
  const segmenter = segmenterFor(await loadFvad(), { mode, aggressiveness: 3, threshold: THRESHOLD }, { prefixPaddingMs: 300, silenceMs: 500, minSpeechMs: 200, maxUtteranceMs: 30_000 }, confirmer, (e) =>
    events.push(e),
  );
  const settled = () => new Promise<void>((resolve) => segmenter.settle(resolve));
  for (let at = 0; at < samples.length; at += 320) {
    segmenter.push(samples.subarray(at, at + 320));
    if (at % 16_000 === 0) await settled();
  }
  await settled();
  segmenter.close();
  return events;
}

async function accuracy(): Promise<void> {
  const confirmer = await BatchConfirmer.start({ modelPath: MODEL, maxBatch: 64 });
  const speech: SpeechFixture[] = [
    ...(await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((id) => speechFixture(id)))),
    ...(await Promise.all([1, 2, 3].map((id) => speechFixture(id, { noisy: true })))),
  ];
  const clips = await Promise.all(NOISE_CLIPS.map((name) => noiseClip(name)));
  // Silence before a clip changes where its attack falls in Silero's chunks (LEAD_IN in server/vad/segmenter.ts): 8 offsets of it.
  const leads = [0, ...Array.from({ length: 8 }, (_, i) => 8000 + i * 397)];
  log(`(accuracy) false turns on the noise set (each clip + 1 s of silence, alone and after ${leads.length - 1} lengths of silence, 0.5-0.7 s) and boundaries on real speech (8 clean + 3 noisy fixtures, 33 sentences)`);
  for (const mode of ['webrtc', 'hybrid', 'silero'] as const) {
    const turns = async (c: Float32Array, lead: number) =>
      (await segment(confirmer, mode, joinClips([new Float32Array(lead), c, new Float32Array(16_000)]))).filter((e) => e.type === 'speech_stopped').length;
    const falseTurns = await Promise.all(clips.map(async (c) => (await Promise.all(leads.map((lead) => turns(c.samples16k, lead)))).join('/')));
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
      `  ${mode.padEnd(7)} false turns (alone/after silence): ${NOISE_CLIPS.map((n, i) => `${n} ${falseTurns[i]}`).join(', ')}; ` +
        `sentences as one turn each: ${matched}/${sentences}; boundary error median ${deviations[deviations.length >> 1]} ms, max ${deviations.at(-1)} ms`,
    );
  }
  await confirmer.close();
}

async function main(): Promise<void> {
  log(`earshot bench/vad.ts on ${cpus().length} × ${cpus()[0]?.model}, node ${process.version}, load average ${loadavg().map((x) => round(x)).join(' ')}`);
  // The inference threads are unref'd (they never hold a server open): this holds the bench's process while it waits on them.
  const alive = setInterval(() => undefined, 1000);
  if (PARTS.has('cpu')) await vadCpu();
  const fixtures = await Promise.all([0, 1, 2, 3].map((id) => speechFixture(id)));
  const voices = fixtures.map((f) => voiceOf(f.opusPackets));
  if (PARTS.has('server')) {
    const warmup = warmupMs(20);
    log(`(server) server CPU per stream, ${SESSIONS} real-time Opus sessions (speech fixtures 0-3 on loop), ${WINDOW_MS / 1000} s window after ${warmup / 1000} s warm-up`);
    // Modes alternate round after round, so the box's drift spreads over all of them; each mode's figure is its mean.
    const perFrame = new Map<string, number[]>();
    for (let r = 0; r < ROUNDS; r++) {
      for (const { label, config } of MODES.filter((m) => MODE_KEYS.has(m.key))) {
        const result = await runRamp(voices, { transport: 'uws', steps: [SESSIONS], warmupMs: warmup, windowMs: WINDOW_MS, config, log: (line) => log(`${line}  [${label}]`) });
        perFrame.set(label, [...(perFrame.get(label) ?? []), result.steps[0]!.serverUsPerFrame]);
      }
    }
    log(`  ${roundsSummary('µs of server CPU per 20 ms frame', perFrame)}`);
  }
  if (PARTS.has('held')) {
    log(`(held) sessions held (p99 frame-to-VAD lag < 30 ms), steps ${STEPS.join(', ')}`);
    for (const label of ['webrtc', 'hybrid']) {
      const { config } = MODES.find((m) => m.label === label)!;
      const result = await runRamp(voices, { transport: 'uws', steps: STEPS, warmupMs: warmupMs(3), windowMs: WINDOW_MS, config, log: (line) => log(`${line}  [${label}]`) });
      log(`  ${label}: held ${result.held}`);
    }
  }
  if (PARTS.has('accuracy')) await accuracy();
  clearInterval(alive);
}

await main();
