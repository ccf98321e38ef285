/**
 * Voice out must not hurt listening (issue 18): frame-to-VAD lag at N real-time Opus sessions
 * with spoken replies on and off, in one run: one server (echo test engine, the embedded Flite
 * voice), one load generator (bench/load.ts), steps alternating off, on, off, on... Each step
 * is a fresh fleet of N sessions (a voice is asked for in hello, so it cannot change mid-session)
 * streaming the speech fixtures in real time; every utterance gets a reply, spoken in the "on"
 * steps (20 ms Opus frames, taken raw) until the next utterance barges in. Alternating spreads
 * the box's drift over both modes; the verdict compares the mean p99 of each mode (target: on
 * within 20% of off).
 *
 *   node --import tsx bench/voice-lag.ts [--sessions 100] [--rounds 2] [--window 20] [--warmup 5]
 *     [--transport uws|ws] [--vad hybrid|webrtc|silero] [--codec opus|pcm16] [--barge-in on|off]
 *     [--against voice|spin|memory] [--profile DIR] [--generator-cpu N]
 *
 * The fixtures speak almost without pause, so with barge-in on (the default) a reply is spoken
 * only until the next utterance starts; `--barge-in off` lets every reply be spoken to its end
 * (in both modes), the heavy case: replies queue behind the user's next utterances. Each step
 * prints how many sessions were speaking on average, so the voice load is on record.
 *
 * Frame lag is the dense probe of load.ts (a ping in the same write as every 5th frame; with
 * --vad webrtc it is frame-to-VAD, with hybrid or silero it ends where Silero takes over) and
 * decision lag the sparse one (deciding frame sent → `vad silence` received, in every mode).
 *
 * `--against spin` or `memory` replaces the voice in the "on" steps by one process at the lowest
 * priority (nice 19, SCHED_IDLE, as the synthesis processes run) that keeps a core busy: `spin`
 * in registers only, `memory` writing a fresh 21 MB buffer again and again (what Flite's WASM
 * memory per sentence does to the caches). No session speaks then: what is left of the lag is
 * what a busy spare core costs listening on this machine, whatever keeps it busy.
 *
 * Both lags include waiting for a CPU: each step also prints how long the server's event loop
 * was runnable but not running (Linux schedstat), what the server's other threads used (the
 * voice threads run at the lowest priority, "background"), and the generator's own CPU,
 * run-queue wait and event-loop delay, so a lag that comes from the generator or from a
 * machine without a spare core shows as such. --profile DIR writes each step's CPU profile of
 * the server's main thread (read with bench/profile.ts; the profiler adds lag of its own).
 *
 * `--generator-cpu N` keeps the load generator (this process, every thread) on CPU N once the
 * server has started on all of them (Linux, taskset), as a generator on another machine would
 * stay out of the server's way: the server's threads then meet only each other.
 */
import { execFileSync, spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { speechFixture } from '../test/fixtures/speech.js';
import { pipelineConfig } from './capacity.js';
import { ServerChild } from './child.js';
import { FRAME_MS, Fleet, voiceOf, type HelloOptions } from './load.js';
import { CpuWindow, mean, round, ThreadWindow, type Percentiles, type ThreadsSummary } from './stats.js';

const { values: args } = parseArgs({
  options: {
    sessions: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '2' },
    window: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '5' },
    transport: { type: 'string', default: 'uws' },
    vad: { type: 'string', default: 'hybrid' },
    codec: { type: 'string', default: 'opus' },
    'barge-in': { type: 'string', default: 'on' },
    against: { type: 'string', default: 'voice' },
    profile: { type: 'string' },
    'generator-cpu': { type: 'string' },
  },
});
const SESSIONS = Number(args.sessions);
const TARGET = 1.2;
const log = (line: string) => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Step {
  voice: boolean;
  frameLagMs: Percentiles;
  decisionLagMs: Percentiles;
  serverCores: number;
  machine: number;
  /** The server's threads: its event loop's CPU and run-queue wait, the background (voice) threads, the rest. */
  serverThreads: ThreadsSummary;
  /** The load generator (this process): its CPU, its main thread's run-queue wait, its event loop's delay p99. */
  generator: { cores: number; waiting: number; loopDelayP99Ms: number };
  /** Seconds of spoken reply received per second: how many sessions were speaking at once, on average. */
  speaking: number;
  turns: number;
  errors: number;
  dropped: number;
}

const transport = args.transport as 'uws' | 'ws';
const config = { ...pipelineConfig(transport), vad: args.vad as 'hybrid' | 'webrtc' | 'silero', tts: 'flite' as const, logLevel: 'error' as const };
log(`earshot bench/voice-lag.ts on ${cpus().length} × ${cpus()[0]?.model}, node ${process.version}, load average ${loadavg().map((x) => round(x)).join(' ')}`);
log(`${SESSIONS} real-time Opus sessions, ${transport}, --vad ${config.vad}, voice ${args.codec}, barge-in ${args['barge-in']}, against ${args.against}, ${args.rounds} rounds of voice off then on, ${args.warmup} s warm-up + ${args.window} s window per step${args['generator-cpu'] === undefined ? '' : `, generator on CPU ${args['generator-cpu']} only`}`);
const fixtures = await Promise.all([0, 1, 2, 3].map((id) => speechFixture(id)));
const voices = fixtures.map((f) => voiceOf(f.opusPackets));
const server = await ServerChild.start({ mode: 'pipeline', config });
// After the server started (it keeps every CPU): the generator's threads move to one CPU.
if (args['generator-cpu'] !== undefined) execFileSync('taskset', ['--all-tasks', '--cpu-list', '--pid', args['generator-cpu'], String(process.pid)], { stdio: 'ignore' });
const cpu = new CpuWindow(server.pid);
const serverThreads = new ThreadWindow(server.pid);
const generatorThreads = new ThreadWindow(process.pid, false);
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();
const steps: Step[] = [];

/** Loops that keep a core busy at the lowest priority (--against spin|memory). */
const BUSY = {
  spin: 'for (;;) {}',
  memory: 'for (;;) new Uint8Array(21 << 20).fill(1)',
};

function busyCore(kind: keyof typeof BUSY): () => void {
  const child = spawn('chrt', ['--idle', '0', 'nice', '-n', '19', process.execPath, '-e', BUSY[kind]], { stdio: 'ignore' });
  return () => child.kill('SIGKILL');
}

async function step(voice: boolean): Promise<Step> {
  const fleet = new Fleet();
  const speak = voice && args.against === 'voice';
  const hello: HelloOptions = { bargeIn: args['barge-in'] !== 'off', ...(speak ? { voice: { codec: args.codec as 'opus' | 'pcm16' } } : {}) };
  const idle = voice && args.against !== 'voice' ? busyCore(args.against as keyof typeof BUSY) : undefined;
  try {
    await fleet.add(server.url, SESSIONS, voices, hello);
    await sleep(Number(args.warmup) * 1000);
    fleet.resetWindow();
    if (args.profile) await server.profileStart();
    cpu.restart();
    serverThreads.restart();
    generatorThreads.restart();
    loopDelay.reset();
    await sleep(Number(args.window) * 1000);
    const used = cpu.read();
    const threads = serverThreads.read();
    const generator = generatorThreads.read();
    const loopDelayP99Ms = loopDelay.percentile(99) / 1e6;
    if (args.profile) await server.profileStop(`${args.profile}/voice-${voice ? 'on' : 'off'}-${steps.length}.cpuprofile`);
    const result: Step = {
      voice,
      frameLagMs: fleet.frameLag.summary(),
      decisionLagMs: fleet.decisionLag.summary(),
      serverCores: round(used.server),
      machine: round(used.machine),
      serverThreads: threads,
      generator: { cores: round(used.generator), waiting: round(generator.main.waiting), loopDelayP99Ms: round(loopDelayP99Ms, 1) },
      speaking: round((fleet.voiceFrames * FRAME_MS) / 1000 / used.seconds, 1),
      turns: fleet.turns,
      errors: fleet.errors,
      dropped: fleet.dropped,
    };
    log(
      `  voice ${voice ? 'on ' : 'off'}: frame lag p50/p99 ${round(result.frameLagMs.p50, 1)}/${round(result.frameLagMs.p99, 1)} ms (n=${result.frameLagMs.n}), ` +
        `decision lag ${round(result.decisionLagMs.p50, 1)}/${round(result.decisionLagMs.p99, 1)} ms (n=${result.decisionLagMs.n}), server ${result.serverCores} cores, ` +
        `machine ${result.machine}/${cpus().length}, ${result.speaking} sessions speaking on average, ${result.turns} turns, ${result.errors} errors, ${result.dropped} dropped`,
    );
    const { main, background, other } = threads;
    log(
      `    server event loop ${round(main.cores)} cores, waited for a CPU ${round(main.waiting * 1000)} ms/s; ${background.threads} background threads ${round(background.cores)} cores; ` +
        `${other.threads} other threads ${round(other.cores)} cores, waited ${round(other.waiting * 1000)} ms/s; ` +
        `generator ${result.generator.cores} cores, waited ${round(result.generator.waiting * 1000)} ms/s, loop delay p99 ${result.generator.loopDelayP99Ms} ms`,
    );
    return result;
  } finally {
    idle?.();
    fleet.close();
    // Let the server close the fleet's sessions before the next one connects.
    await sleep(1000);
  }
}

try {
  for (let round = 0; round < Number(args.rounds); round++) {
    steps.push(await step(false));
    steps.push(await step(true));
  }
} finally {
  await server.stop();
}

const p99 = (voice: boolean, lag: 'frameLagMs' | 'decisionLagMs') => mean(steps.filter((s) => s.voice === voice).map((s) => s[lag].p99));
for (const lag of ['frameLagMs', 'decisionLagMs'] as const) {
  const off = p99(false, lag);
  const on = p99(true, lag);
  const ratio = on / off;
  log(`${lag === 'frameLagMs' ? 'frame lag' : 'decision lag'} p99, mean of ${args.rounds} steps: voice off ${round(off, 1)} ms, on ${round(on, 1)} ms: ${round(ratio)}× (target ≤ ${TARGET}×: ${ratio <= TARGET ? 'met' : 'NOT met'})`);
}
