/**
 * What "works" means for Gemma-4 on MLX, checked on the machine itself through the real mlx
 * engine (worker.py processes, the pool, cancellation by AbortSignal), with known spoken clips.
 * Without mlx_vlm every check is reported as not checked, with the reason; nothing is guessed.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { decodeWav } from '../server/audio/wav.js';
import { MlxEngine } from '../server/engines/mlx/pool.js';
import { SAMPLE_RATE } from '../server/audio/format.js';
import type { Message, TurnEvent, TurnRequest } from '../server/engines/types.js';

const run = promisify(execFile);

/** espeak-ng recordings (16 kHz mono) of known sentences, of different lengths. */
const CLIPS = [
  { file: 'fox.wav', text: 'The quick brown fox jumps over the lazy dog.' },
  { file: 'stella.wav', text: 'Please call Stella.' },
  { file: 'apples.wav', text: 'Seven large green apples are sitting on the kitchen table next to the window.' },
] as const;
const REPEAT = 'Repeat exactly the words you hear, nothing else.';
const LONGEST_MS = 30_000;
const BATCH = 8;
/** Share of a clip's words the answer must contain for "answered with its words". */
const WORDS_NEEDED = 0.6;
const PACKAGES = ['mlx', 'mlx-metal', 'mlx-vlm', 'mlx-lm', 'transformers', 'huggingface-hub', 'numpy', 'tqdm'];

export type Status = 'pass' | 'fail' | 'not checked' | 'info';
export interface Check {
  name: string;
  status: Status;
  detail: string;
}
export interface Report {
  startedAt: string;
  python: string;
  model: string;
  /** Where mlx_vlm was imported from and its version, or why it could not be. */
  mlxVlm: string;
  versions: string[];
  checks: Check[];
}

export interface DoctorOptions {
  python: string;
  model: string;
  /** The hang timeout the server would use: the longest prefill must stay under it. */
  hangTimeoutMs: number;
  loadStallMs: number;
  env?: Record<string, string>;
  logger: Logger;
}

interface Clip {
  text: string;
  samples: Float32Array;
}

function loadClips(): Clip[] {
  return CLIPS.map(({ file, text }) => {
    const wav = decodeWav(readFileSync(fileURLToPath(new URL(`./clips/${file}`, import.meta.url))));
    if (wav.sampleRate !== SAMPLE_RATE) throw new Error(`${file}: expected 16 kHz`);
    return { text, samples: wav.channels[0]! };
  });
}

const words = (text: string) => text.toLowerCase().match(/[a-z']+/g) ?? [];

/** Share of the clip's words found in the answer. */
export function wordsHeard(clipText: string, answer: string): number {
  const said = new Set(words(answer));
  const expected = words(clipText);
  return expected.filter((w) => said.has(w)).length / expected.length;
}

/** The clips repeated (with short silences) until `ms` long: the longest clip the model takes. */
function longClip(clips: Clip[], ms: number): Float32Array {
  const out = new Float32Array((ms * SAMPLE_RATE) / 1000);
  let at = 0;
  for (let i = 0; at < out.length; i++) {
    const piece = clips[i % clips.length]!.samples.subarray(0, out.length - at);
    out.set(piece, at);
    at += piece.length + SAMPLE_RATE / 5;
  }
  return out;
}

async function pythonSays(python: string, code: string, env: Record<string, string>): Promise<string> {
  const { stdout } = await run(python, ['-c', code], { env: { ...process.env, ...env }, timeout: 60_000 });
  return stdout.trim();
}

async function versions(python: string, env: Record<string, string>): Promise<string[]> {
  const lines = [`python ${await pythonSays(python, 'import sys; print(sys.version.split()[0])', env).catch((e: Error) => `not runnable: ${e.message}`)}`];
  const freeze = await pythonSays(python, 'import subprocess, sys; print(subprocess.run([sys.executable, "-m", "pip", "freeze"], capture_output=True, text=True).stdout)', env).catch(() => '');
  const wanted = freeze.split('\n').filter((line) => PACKAGES.includes(line.split(/[=@ ]/)[0]!.toLowerCase().replace(/_/g, '-')));
  return [...lines, ...(wanted.length > 0 ? wanted : ['pip freeze: none of ' + PACKAGES.join(', ')])];
}

interface Outcome {
  text: string;
  deltas: number;
  firstDeltaAt: number | undefined;
  endAt: number;
  end: Exclude<TurnEvent, { type: 'delta' }> | undefined;
}

let turnCounter = 0;
function request(messages: Message[], maxTokens: number, signal = new AbortController().signal): TurnRequest {
  turnCounter++;
  return { id: `doctor-${turnCounter}`, sessionId: `doctor-session-${turnCounter}`, messages, params: { maxTokens, temperature: 0 }, signal, readyAt: performance.now() };
}

async function runTurns(engine: MlxEngine, requests: TurnRequest[], onDelta?: (index: number, outcome: Outcome) => void): Promise<Outcome[]> {
  const outcomes = requests.map((): Outcome => ({ text: '', deltas: 0, firstDeltaAt: undefined, endAt: 0, end: undefined }));
  const index = new Map(requests.map((r, i) => [r.id, i]));
  await engine.run(requests, (turnId, event) => {
    const i = index.get(turnId)!;
    const outcome = outcomes[i]!;
    if (event.type === 'delta') {
      outcome.text += event.text;
      outcome.deltas++;
      outcome.firstDeltaAt ??= performance.now();
      onDelta?.(i, outcome);
    } else {
      outcome.end = event;
      outcome.endAt = performance.now();
    }
  });
  return outcomes;
}

const voice = (clip: Float32Array, instruction = REPEAT): Message[] => [
  { role: 'user', parts: [{ type: 'text', text: instruction }, { type: 'audio', samples: clip }] },
];
const finished = (o: Outcome) => o.end?.type === 'done' && o.end.finish !== 'cancelled';
const ended = (o: Outcome) => (o.end?.type === 'error' ? `error ${o.end.error.code}: ${o.end.error.message}` : `${o.end?.type === 'done' ? o.end.finish : 'no end'}`);
const quote = (text: string) => JSON.stringify(text.length > 160 ? `${text.slice(0, 160)}…` : text);
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function until(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

export const CHECK_NAMES = [
  'model loads',
  'single BOS',
  'a known spoken clip is answered with its words',
  'audio tokens = ceil(ms / 40)',
  'three clips prefilled together: own answers, equal to batch of 1',
  'cancel during prefill',
  'cancel during decode',
  'two-turn voice history',
  'text-only turn after a voice turn',
  `longest prefill (${BATCH} x ${LONGEST_MS / 1000} s clips) under the hang timeout`,
  'decode speed',
  'peak memory',
];

export async function runDoctor(options: DoctorOptions): Promise<Report> {
  const env = options.env ?? {};
  const report: Report = {
    startedAt: new Date().toISOString(),
    python: options.python,
    model: options.model,
    mlxVlm: '',
    versions: await versions(options.python, env),
    checks: [],
  };
  try {
    report.mlxVlm = await pythonSays(options.python, 'import mlx_vlm, importlib.metadata as m\ntry: v = m.version("mlx-vlm")\nexcept Exception: v = getattr(mlx_vlm, "__version__", "?")\nprint(v, "from", mlx_vlm.__file__)', env);
  } catch (err) {
    const why = ((err as { stderr?: string }).stderr ?? (err as Error).message).trim().split('\n').pop();
    report.mlxVlm = `NOT IMPORTABLE by ${options.python}: ${why}. MLX runs on Apple Silicon Macs: see README "Run Gemma-4 on a Mac".`;
    report.checks = CHECK_NAMES.map((name) => ({ name, status: 'not checked', detail: 'needs mlx_vlm, which this Python cannot import (see above)' }));
    return report;
  }
  const add = (name: string, status: Status, detail: string) => {
    report.checks.push({ name, status, detail });
    options.logger.info({ check: name, status }, detail);
  };
  const loadStarted = performance.now();
  let engine: MlxEngine;
  try {
    engine = await MlxEngine.start({
      model: options.model,
      workers: 1,
      python: options.python,
      maxBatchPerWorker: BATCH,
      readyTimeoutMs: options.loadStallMs,
      pingIntervalMs: 500,
      hangTimeoutMs: options.hangTimeoutMs,
      env,
      logger: options.logger,
    });
  } catch (err) {
    add(CHECK_NAMES[0]!, 'fail', (err as Error).message);
    for (const name of CHECK_NAMES.slice(1)) add(name, 'not checked', 'the model did not load');
    return report;
  }
  try {
    add(CHECK_NAMES[0]!, 'pass', `ready in ${seconds(performance.now() - loadStarted)} (download included)`);
    await checkAll(engine, options, add);
  } finally {
    await engine.close();
  }
  return report;
}

async function checkAll(engine: MlxEngine, options: DoctorOptions, add: (name: string, status: Status, detail: string) => void): Promise<void> {
  const [bosName, wordsName, tokensName, batchName, prefillName, decodeName, historyName, textName, longestName, speedName, memoryName] = CHECK_NAMES.slice(1) as [string, ...string[]];
  const clips = loadClips();

  const probe = engine.status()[0]!.probe;
  const bosOk = (p: { bos: number; bosFirst: boolean } | undefined) => p !== undefined && p.bos === 1 && p.bosFirst;
  const withAudio = probe?.withAudio && 'bos' in probe.withAudio ? probe.withAudio : undefined;
  add(bosName!, bosOk(probe?.textOnly) && bosOk(withAudio) ? 'pass' : 'fail', `worker probe: ${JSON.stringify(probe)}`);

  const [first] = await runTurns(engine, [request(voice(clips[0]!.samples), 48)]);
  const heard = wordsHeard(clips[0]!.text, first!.text);
  add(wordsName!, finished(first!) && heard >= WORDS_NEEDED ? 'pass' : 'fail', `said ${quote(clips[0]!.text)}; answer ${quote(first!.text)} (${Math.round(heard * 100)}% of the words, ${WORDS_NEEDED * 100}% needed; ${ended(first!)})`);

  const alone: Outcome[] = [];
  for (const clip of clips) alone.push((await runTurns(engine, [request(voice(clip.samples), 48)]))[0]!);
  const expected = clips.map((c) => Math.ceil((c.samples.length * 1000) / SAMPLE_RATE / 40));
  const counted = alone.map((o) => (o.end?.type === 'done' ? o.end.usage.audioTokens : undefined));
  add(tokensName!, counted.every((n, i) => n === expected[i]) ? 'pass' : 'fail', `clips of ${clips.map((c) => Math.round((c.samples.length * 1000) / SAMPLE_RATE)).join(', ')} ms: expected ${expected.join(', ')}, got ${counted.join(', ')}`);

  const together = await runTurns(engine, clips.map((c) => request(voice(c.samples), 48)));
  const same = together.every((o, i) => finished(o) && o.text === alone[i]!.text);
  const distinct = new Set(together.map((o) => o.text)).size === clips.length;
  add(
    batchName!,
    same && distinct ? 'pass' : 'fail',
    together.map((o, i) => `clip ${i + 1}: batched ${quote(o.text)}${o.text === alone[i]!.text ? ' = alone' : `, alone ${quote(alone[i]!.text)}`}`).join('; ') + (distinct ? '' : '; two clips got the same answer'),
  );

  const long = longClip(clips, LONGEST_MS);
  const cancelled = new AbortController();
  const prefillRun = runTurns(engine, [request(voice(long), 16, cancelled.signal), request(voice(long), 16)]);
  // Both prompts are in the worker's prefill by now on any machine that takes longer than this to prefill 2 x 30 s.
  setTimeout(() => cancelled.abort(), 50);
  const [gone, kept] = await prefillRun;
  const confirmed = await until(() => engine.status()[0]!.inFlight === 0, 30_000);
  add(
    prefillName!,
    gone!.end?.type === 'done' && gone!.end.finish === 'cancelled' && gone!.deltas === 0 && finished(kept!) && confirmed ? 'pass' : 'fail',
    `cancelled turn: ${ended(gone!)} after ${gone!.deltas} deltas; its neighbour: ${ended(kept!)}; worker confirmed: ${confirmed}`,
  );

  const stop = new AbortController();
  const [cut] = await runTurns(engine, [request(voice(clips[2]!.samples, 'Describe what you hear in detail.'), 200, stop.signal)], () => stop.abort());
  const freed = await until(() => engine.status()[0]!.inFlight === 0, 30_000);
  add(decodeName!, cut!.end?.type === 'done' && cut!.end.finish === 'cancelled' && cut!.deltas === 1 && freed ? 'pass' : 'fail', `${cut!.deltas} delta(s) then ${ended(cut!)}; worker confirmed: ${freed}`);

  const history: Message[] = [...voice(clips[0]!.samples), { role: 'assistant', parts: [{ type: 'text', text: first!.text }] }, ...voice(clips[2]!.samples)];
  const [second] = await runTurns(engine, [request(history, 48)]);
  const secondAudio = second!.end?.type === 'done' ? second!.end.usage.audioTokens : undefined;
  add(historyName!, finished(second!) && secondAudio === expected[2] ? 'pass' : 'fail', `second voice turn: ${quote(second!.text)} (${Math.round(wordsHeard(clips[2]!.text, second!.text) * 100)}% of its words; ${secondAudio} audio tokens, the earlier clip as a note; ${ended(second!)})`);

  const typed: Message[] = [...history, { role: 'assistant', parts: [{ type: 'text', text: second!.text }] }, { role: 'user', parts: [{ type: 'text', text: 'What was the first thing I said?' }] }];
  const [third] = await runTurns(engine, [request(typed, 48)]);
  const thirdAudio = third!.end?.type === 'done' ? third!.end.usage.audioTokens : undefined;
  add(textName!, finished(third!) && third!.text.length > 0 && thirdAudio === 0 ? 'pass' : 'fail', `answer ${quote(third!.text)} (${thirdAudio} audio tokens; ${ended(third!)})`);

  const started = performance.now();
  const restartsBefore = engine.status()[0]!.restarts;
  const eight = await runTurns(engine, Array.from({ length: BATCH }, () => request(voice(long, 'Describe what you hear in detail.'), 64)));
  const slowest = Math.max(...eight.map((o) => (o.firstDeltaAt ?? Number.POSITIVE_INFINITY) - started));
  const allDone = eight.every(finished) && engine.status()[0]!.restarts === restartsBefore;
  add(longestName!, allDone && slowest < options.hangTimeoutMs ? 'pass' : 'fail', `slowest first token after ${seconds(slowest)}; hang timeout ${seconds(options.hangTimeoutMs)}; ${eight.filter(finished).length}/${BATCH} finished`);

  const rate = (outcomes: Outcome[]) => {
    const tokens = outcomes.reduce((sum, o) => sum + (o.end?.type === 'done' ? o.end.usage.completionTokens : 0), 0);
    const from = Math.min(...outcomes.map((o) => o.firstDeltaAt ?? Number.POSITIVE_INFINITY));
    const to = Math.max(...outcomes.map((o) => o.endAt));
    return to > from ? `${(tokens / ((to - from) / 1000)).toFixed(1)} tokens/s (${tokens} tokens)` : 'not measurable';
  };
  add(speedName!, 'info', `one stream: ${rate([alone[2]!])}; ${BATCH} streams together: ${rate(eight)}`);

  await new Promise((resolve) => setTimeout(resolve, 1200));
  const peak = engine.status()[0]!.peakMemoryBytes;
  add(memoryName!, 'info', peak === undefined ? 'not reported (the worker could not import mlx.core)' : `${(peak / 1e9).toFixed(2)} GB peak MLX memory in the worker`);
}

export function renderReport(report: Report): string {
  const counts = (s: Status) => report.checks.filter((c) => c.status === s).length;
  const lines = [
    '# Earshot doctor report',
    '',
    `- date: ${report.startedAt}`,
    `- python: ${report.python}`,
    `- mlx_vlm: ${report.mlxVlm}`,
    `- model: ${report.model}`,
    `- result: ${counts('pass')} passed, ${counts('fail')} failed, ${counts('not checked')} not checked`,
    '',
    '## Versions (pip freeze)',
    '',
    ...report.versions.map((v) => `    ${v}`),
    '',
    '## Checks',
    '',
    '| check | result | detail |',
    '|---|---|---|',
    ...report.checks.map((c) => `| ${c.name} | ${c.status.toUpperCase()} | ${c.detail.replace(/\|/g, '\\|').replace(/\n/g, ' ')} |`),
    '',
  ];
  return lines.join('\n');
}

/** 0: every check passed; 1: a check failed; 2: nothing could be checked. */
export function exitCode(report: Report): number {
  if (report.checks.every((c) => c.status === 'not checked')) return 2;
  return report.checks.some((c) => c.status === 'fail') ? 1 : 0;
}
