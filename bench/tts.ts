/**
 * The voice stage's numbers (issue 18): each TTS engine's real-time factor on this machine,
 * first-chunk latency with the embedded engine at 1, 10 and 50 concurrent speaking sessions,
 * and a soak of the embedded engine (hundreds of calls, memory before and after).
 *
 *   node --expose-gc --import tsx bench/tts.ts [--sessions 1,10,50] [--seconds 30] [--soak 500]
 *     [--tts flite|say|openai] [--tts-url URL] [--tts-say-command say]
 *
 * Real-time factor per engine: Flite by default (every voice); `--tts say` on a Mac, or
 * `--tts openai --tts-url http://host:8880/v1` for an OpenAI-compatible upstream (its first
 * voices), measure the others.
 *
 * First-chunk latency: from the moment the first piece's text is complete (the chunker cuts it)
 * to the first audio chunk of the reply. Each simulated session streams a reply word by word
 * (15 ms per word, as the echo engine's default pace), "plays" its audio in real time, pauses
 * a second, and speaks the next reply; sessions start spread over the first two seconds.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { defaultConfig } from '../server/config.js';
import { createVoiceStage, type VoiceStage } from '../server/voice/stage.js';
import { VOICE_SAMPLE_RATE } from '../server/voice/types.js';
import { percentiles, processCpuSeconds, round } from './stats.js';

const { values: args } = parseArgs({
  options: {
    sessions: { type: 'string', default: '1,10,50' },
    seconds: { type: 'string', default: '30' },
    soak: { type: 'string', default: '500' },
    threads: { type: 'string', default: '2' },
    tts: { type: 'string', default: 'flite' },
    'tts-url': { type: 'string' },
    'tts-say-command': { type: 'string', default: 'say' },
  },
});

const REPLIES = [
  'Sure, I can help with that. The library opens at nine in the morning and closes at six. Would you like directions?',
  'That is a good question. Most people need about eight hours of sleep, although it varies from person to person.',
  'Well, it depends on the weather. If it rains tomorrow, the match will be moved to Sunday afternoon.',
  'Here is a quick summary. Prices rose by two percent last month, mostly because of energy costs.',
];
const WORD_MS = 15;
const PAUSE_MS = 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const live = () => new AbortController().signal;
/** Flite synthesises in child processes: their CPU and memory count as the engine's. */
const synthesisPids = (stage: VoiceStage) => (stage.tts as { pids?: number[] }).pids ?? [];
const cpuSeconds = (stage: VoiceStage) => [process.pid, ...synthesisPids(stage)].reduce((sum, pid) => sum + processCpuSeconds(pid), 0);
const rssMB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;

async function realTimeFactor(stage: VoiceStage, voice: string): Promise<{ audioS: number; wallS: number; cpuS: number; rtf: number; cpuPerAudioS: number; perSentenceMs: number }> {
  const sentences = REPLIES.flatMap((r) => r.split(/(?<=[.?!])\s+/));
  const cpu0 = cpuSeconds(stage);
  const t0 = performance.now();
  let samples = 0;
  for (const text of sentences) for await (const pcm of stage.tts.speak(text, voice, live())) samples += pcm.length;
  const wallS = (performance.now() - t0) / 1000;
  const cpuS = cpuSeconds(stage) - cpu0;
  const audioS = samples / VOICE_SAMPLE_RATE;
  return { audioS: round(audioS), wallS: round(wallS), cpuS: round(cpuS), rtf: round(wallS / audioS, 4), cpuPerAudioS: round(cpuS / audioS, 4), perSentenceMs: round((wallS * 1000) / sentences.length, 1) };
}

async function session(stage: VoiceStage, until: number, latencies: number[], index: number): Promise<void> {
  await sleep(Math.random() * 2000);
  for (let turn = index; performance.now() < until; turn++) {
    const reply = stage.reply(stage.defaultVoice, live());
    let firstTextAt = 0;
    let firstAudioAt = 0;
    let samples = 0;
    const played = (async () => {
      for await (const pcm of reply.audio()) {
        if (firstAudioAt === 0) firstAudioAt = performance.now();
        samples += pcm.length;
      }
    })();
    for (const word of REPLIES[turn % REPLIES.length]!.split(/(?= )/)) {
      reply.push(word);
      if (firstTextAt === 0 && reply.spoken.length > 0) firstTextAt = performance.now();
      await sleep(WORD_MS);
    }
    reply.end();
    await played;
    if (reply.failed) throw reply.failed;
    latencies.push(firstAudioAt - firstTextAt);
    // The client plays the reply in real time, then the user answers.
    await sleep(Math.max(0, (samples / VOICE_SAMPLE_RATE) * 1000 - (performance.now() - firstAudioAt)) + PAUSE_MS);
  }
}

async function concurrency(stage: VoiceStage, sessions: number, seconds: number) {
  const latencies: number[] = [];
  const cpu0 = cpuSeconds(stage);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: sessions }, (_, i) => session(stage, t0 + seconds * 1000, latencies, i)));
  const wallS = (performance.now() - t0) / 1000;
  const p = percentiles(latencies);
  return { sessions, replies: p.n, firstChunkMs: { p50: round(p.p50, 1), p95: round(p.p95, 1), p99: round(p.p99, 1), max: round(p.max, 1) }, cores: round((cpuSeconds(stage) - cpu0) / wallS) };
}

async function soak(stage: VoiceStage, calls: number) {
  const gc = (globalThis as { gc?: () => void }).gc;
  const memory = () => {
    gc?.();
    const m = process.memoryUsage();
    return {
      rssMB: round(m.rss / 2 ** 20, 1),
      heapMB: round(m.heapUsed / 2 ** 20, 1),
      externalMB: round(m.external / 2 ** 20, 1),
      synthesisRssMB: synthesisPids(stage).map((pid) => round(rssMB(pid), 1)),
    };
  };
  for await (const _ of stage.speak('Warm up.', stage.defaultVoice, live()));
  const before = memory();
  const marks: Record<number, ReturnType<typeof memory>> = {};
  for (let i = 1; i <= calls; i++) {
    for await (const _ of stage.speak(`Call number ${i} of the soak test.`, stage.defaultVoice, live()));
    if (i % Math.max(1, Math.floor(calls / 4)) === 0) marks[i] = memory();
  }
  return { calls, before, marks, gcExposed: gc !== undefined };
}

const threads = Number(args.threads);
const engine = args.tts as 'flite' | 'say' | 'openai';
const stage = (await createVoiceStage(defaultConfig({ tts: engine, ttsThreads: threads, ttsSayCommand: args['tts-say-command'], ...(args['tts-url'] ? { ttsUrl: args['tts-url'] } : {}) })))!;
const result: Record<string, unknown> = { date: new Date().toISOString(), engine, threads, machine: 'see bench/RESULTS.md' };
// Start every synthesis process (and compile Flite in it) before measuring.
await Promise.all(Array.from({ length: threads }, () => (async () => {
  for await (const _ of stage.tts.speak('Warm up.', stage.defaultVoice, live()));
})()));
const rtf: Record<string, unknown> = {};
for (const voice of stage.voices().slice(0, 4).map((v) => v.id)) {
  rtf[`${engine}/${voice}`] = await realTimeFactor(stage, voice);
  console.log(`RTF ${engine}/${voice}`, rtf[`${engine}/${voice}`]);
}
result['realTimeFactor'] = rtf;
const runs = [];
for (const n of args.sessions.split(',').map(Number)) {
  const run = await concurrency(stage, n, Number(args.seconds));
  console.log('first chunk', run);
  runs.push(run);
}
result['firstChunk'] = runs;
result['soak'] = await soak(stage, Number(args.soak));
console.log('soak', JSON.stringify(result['soak']));
await stage.close();
const file = `bench/results/${new Date().toISOString().replace(/[:.]/g, '-')}-tts.json`;
writeFileSync(file, JSON.stringify(result, null, 2));
console.log(`wrote ${file}`);
