/**
 * `npm run bench` (at most ~5 min) and `npm run bench -- --quick` (under 60 s).
 * Starts the server itself in a child process, drives it from this one over 127.0.0.1, and
 * prints a table; JSON goes to bench/results/<timestamp>.json. Every load is bounded in
 * sessions and time and stops by itself.
 *   --quick            fewer, shorter steps
 *   --only a,b,c,d,e   run only these scenarios (floor and capacity go together)
 *   --sweep x,y        run only these capacity sweeps (names in SWEEPS below; 'uws,uws --vad webrtc'
 *                      compares --vad hybrid, the default, with webrtc)
 *   --steps 5,10       session counts of every sweep (a smoke test)
 *   --profile          run the first sweep's server under node --cpu-prof (bench/results/)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Config } from '../server/config.js';
import { speechFixture } from '../test/fixtures/speech.js';
import { runBatching, BATCHING_USERS, type BatchingResult } from './batching.js';
import { LAG_P99_LIMIT_MS, runRamp, type RampResult, type StepResult } from './capacity.js';
import { measureFloor, type FloorResult } from './floor.js';
import { runLibrary, type LibraryResult } from './library.js';
import { voiceOf } from './load.js';
import { runRest, type RestResult } from './rest.js';
import { SIM_MODEL } from './sim-engine.js';
import { round } from './stats.js';
import { runTransportAlone, runTransportPaced, type TransportResult } from './transport.js';
import { WEB_RATE, webLikePackets } from './web-packets.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const profile = args.includes('--profile');
const onlyArg = args.indexOf('--only');
const only = new Set(onlyArg >= 0 ? args[onlyArg + 1]!.split(',') : ['a', 'b', 'c', 'd', 'e']);
/** One audio thread per core: the event loop then only moves bytes (see bench/RESULTS.md). */
const AUDIO_THREADS = cpus().length;
const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));

const MODE = quick
  ? { steps: [10, 100, 300, 400], librarySessions: 100, warmupMs: 600, windowMs: 2000, wsSteps: [200, 300], threadSteps: [300, 500, 600], transportMs: 1000, pacedConnections: 1000, pacedMs: 2000, batchMs: 2000, batchWarmupMs: 500, restMs: 1000, floorMs: 150 }
  : {
      steps: [10, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000],
      threadSteps: [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000],
      librarySessions: 300,
      warmupMs: 4000,
      windowMs: 6000,
      wsSteps: [100, 200, 300, 400, 500, 600, 700, 800],
      transportMs: 4000,
      pacedConnections: 2000,
      pacedMs: 5000,
      batchMs: 6000,
      batchWarmupMs: 1000,
      restMs: 5000,
      floorMs: 400,
    };

const stepsArg = args.indexOf('--steps');
if (stepsArg >= 0) {
  MODE.steps = MODE.threadSteps = MODE.wsSteps = args[stepsArg + 1]!.split(',').map(Number);
  MODE.librarySessions = MODE.steps.at(-1)!;
}

/** A capacity sweep: the server with `config` over `steps` (MODE.steps unless given). */
interface Sweep {
  name: string;
  config: Partial<Config>;
  steps?: number[];
  /** Runs only when --sweep names it (a comparison, not part of the headline run). */
  onlyWhenNamed?: true;
}

/**
 * The capacity sweeps, the first one the headline. Adding a server variant is one line:
 * `{ name: 'shards 2', config: { shards: 2 } }`. Every sweep runs the same sessions (fixture and
 * web-page-like voices alternating) against a fresh server.
 */
const SWEEPS: Sweep[] = [
  { name: 'uws', config: {} },
  { name: `uws --audio-threads ${AUDIO_THREADS}`, config: { audioThreads: AUDIO_THREADS }, steps: MODE.threadSteps },
  { name: 'uws --shards 2', config: { shards: 2 }, steps: MODE.threadSteps },
  // The sweeps above run --vad hybrid (the default); beside 'uws', this gives sessions held with and without Silero (issue 15).
  { name: 'uws --vad webrtc', config: { vad: 'webrtc' }, onlyWhenNamed: true },
  // Listening threads without Silero: what shards and audio threads add when no thread also hosts a confirmer.
  { name: 'uws --shards 2 --vad webrtc', config: { shards: 2, vad: 'webrtc' }, steps: MODE.threadSteps, onlyWhenNamed: true },
  { name: 'uws --audio-threads 2 --vad webrtc', config: { audioThreads: AUDIO_THREADS, vad: 'webrtc' }, steps: MODE.threadSteps, onlyWhenNamed: true },
];
const sweepArg = args.indexOf('--sweep');
const sweeps = sweepArg >= 0 ? SWEEPS.filter((s) => args[sweepArg + 1]!.split(',').includes(s.name)) : SWEEPS.filter((s) => !s.onlyWhenNamed);

const log = (line: string) => process.stdout.write(`${line}\n`);
const ms = (x: number) => (Number.isFinite(x) ? round(x, 1).toString() : '–');
const us = (x: number) => round(x, 1);
const stepOf = (ramp: RampResult, sessions: number) => ramp.steps.find((s) => s.sessions === sessions);

interface Results {
  date: string;
  command: string;
  machine: { cpus: number; model: string; node: string; loadavg: number[] };
  /** The floor at each session count the sweeps use, over that many states and the sweeps' packet mix. */
  floors?: FloorResult[];
  capacity?: { sweeps: { name: string; config: Partial<Config>; ramp: RampResult }[]; ws?: RampResult };
  library?: { result: LibraryResult; leanGeneratorUsPerFrame?: number };
  transportAlone?: { uws: TransportResult; ws: TransportResult; ratio: number };
  transportPaced?: { connections: number; uws: TransportResult; ws: TransportResult; ratio: number };
  pipelineRatio?: { sessions: number; uwsFramesPerCoreS: number; wsFramesPerCoreS: number; ratio: number };
  batching?: { model: typeof SIM_MODEL; users: number; runs: BatchingResult[] };
  rest?: RestResult[];
}

async function main(): Promise<void> {
  const started = performance.now();
  const results: Results = {
    date: new Date().toISOString(),
    command: `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`,
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '?', node: process.version, loadavg: (await import('node:os')).loadavg().map((x) => round(x)) },
  };
  log(`earshot bench (${quick ? 'quick' : 'full'}) on ${results.machine.cpus} × ${results.machine.model}, node ${process.version}, load average ${results.machine.loadavg.join(' ')}`);
  const fixtures = await Promise.all([0, 1, 2, 3].map((id) => speechFixture(id)));
  const fixturePackets = fixtures.map((f) => f.opusPackets);
  const webPackets = fixtures.map((f) => webLikePackets(f.samples16k));
  // Fixture and web-page-like voices alternate: session i sends voices[i % 8], the floor's stream i the same packets.
  const mixPackets = fixturePackets.flatMap((p, i) => [p, webPackets[i]!]);
  const voices = fixturePackets.flatMap((p, i) => [voiceOf(p), voiceOf(webPackets[i]!, WEB_RATE)]);

  if (only.has('a') || only.has('b') || only.has('c')) {
    const counts = [...new Set([...sweeps.flatMap((s) => s.steps ?? MODE.steps), ...(only.has('c') ? MODE.wsSteps : [])])].sort((a, b) => a - b);
    log(`(floor) Opus decode + WebRTC VAD per 20 ms frame, CPU time, over as many states as sessions: ${counts.join(', ')}`);
    results.floors = [];
    for (const n of counts) {
      const floor = await measureFloor({ mix: mixPackets, fixtures: fixturePackets, web: webPackets }, n, MODE.floorMs);
      results.floors.push(floor);
      log(`  ${String(n).padStart(5)} states: ${us(floor.usPerFrame)} µs/frame (fixtures ${us(floor.fixtureUsPerFrame)}, web-like ${us(floor.webUsPerFrame)}) = ${Math.round(floor.streamsPerCore)} streams/core`);
    }
    results.capacity = { sweeps: [] };
    for (const [i, sweep] of sweeps.entries()) {
      log(`(a, b) capacity sweep '${sweep.name}', real-time Opus sessions`);
      const ramp = await runRamp(voices, {
        transport: sweep.config.transport ?? 'uws',
        steps: sweep.steps ?? MODE.steps,
        warmupMs: MODE.warmupMs,
        windowMs: MODE.windowMs,
        config: sweep.config,
        log,
        ...(profile && i === 0 ? { profileDir: RESULTS } : {}),
      });
      results.capacity.sweeps.push({ ...sweep, ramp });
    }
    log(`(a) ${MODE.librarySessions} sessions driven by the Node client library (EarshotClient.sendAudio), fixture voices`);
    const library = await runLibrary(fixturePackets, MODE.librarySessions, MODE.warmupMs, MODE.windowMs);
    const first = results.capacity.sweeps[0];
    const lean = first && stepOf(first.ramp, MODE.librarySessions);
    results.library = { result: library, ...(lean ? { leanGeneratorUsPerFrame: round((lean.cpu.generator * 1e6) / lean.framesPerS, 1) } : {}) };
    log(`  lag p50/p99 ${ms(library.lagMs.p50)}/${ms(library.lagMs.p99)} ms (n=${library.lagMs.n}), library ${library.generatorUsPerFrame} µs/frame, server ${library.serverUsPerFrame} µs/frame, ${library.errors} errors`);
    if (only.has('c')) {
      log('(c) full pipeline on ws');
      const ws = await runRamp(voices, { transport: 'ws', steps: MODE.wsSteps, warmupMs: MODE.warmupMs, windowMs: MODE.windowMs, log });
      results.capacity.ws = ws;
      // Compare at the largest step both ran, so both did the same work.
      const uws = results.capacity.sweeps.find((s) => s.name === 'uws')?.ramp;
      const common = uws && [...ws.steps].reverse().find((s) => stepOf(uws, s.sessions));
      if (uws && common) {
        const u = stepOf(uws, common.sessions)!;
        results.pipelineRatio = { sessions: common.sessions, uwsFramesPerCoreS: u.framesPerServerCoreS, wsFramesPerCoreS: common.framesPerServerCoreS, ratio: round(u.framesPerServerCoreS / common.framesPerServerCoreS) };
      }
    }
  }

  if (only.has('c')) {
    log('(c) transport alone: frames received and counted');
    const uws = await runTransportAlone('uws', MODE.transportMs);
    const ws = await runTransportAlone('ws', MODE.transportMs);
    results.transportAlone = { uws, ws, ratio: round(uws.framesPerServerCoreS / ws.framesPerServerCoreS) };
    for (const r of [uws, ws]) log(`  ${r.transport}: ${r.framesPerS} frames/s on ${r.serverCores} cores = ${r.framesPerServerCoreS} frames per core-second`);
    log(`(c) transport alone, paced: ${MODE.pacedConnections} connections, one frame per segment every 20 ms`);
    const pacedUws = await runTransportPaced('uws', MODE.pacedConnections, MODE.pacedMs);
    const pacedWs = await runTransportPaced('ws', MODE.pacedConnections, MODE.pacedMs);
    results.transportPaced = { connections: MODE.pacedConnections, uws: pacedUws, ws: pacedWs, ratio: round(pacedUws.framesPerServerCoreS / pacedWs.framesPerServerCoreS) };
    for (const r of [pacedUws, pacedWs]) log(`  ${r.transport}: ${r.framesPerS} frames/s on ${r.serverCores} cores = ${r.framesPerServerCoreS} frames per core-second`);
  }

  if (only.has('d')) {
    log(`(d) batching, SIMULATED engine (sleep-based cost model ${JSON.stringify(SIM_MODEL)}), ${BATCHING_USERS} users in a closed loop`);
    const runs: BatchingResult[] = [];
    for (const maxBatch of [1, 4, 8, 16]) {
      const r = await runBatching(maxBatch, MODE.batchMs, MODE.batchWarmupMs);
      runs.push(r);
      log(`  maxBatch ${maxBatch}: ${r.turnsPerS} turns/s, first delta p50 ${ms(r.firstDeltaMs.p50)} ms (ready → first delta p50 ${ms(r.readyToFirstDeltaMs.p50)} ms)`);
    }
    results.batching = { model: SIM_MODEL, users: BATCHING_USERS, runs };
  }

  if (only.has('e')) {
    log('(e) REST /v1/chat/completions, 5 s of audio');
    results.rest = await runRest(fixtures[0]!, MODE.restMs, log);
  }

  log('');
  log(table(results));
  log(`\ntotal ${round((performance.now() - started) / 1000, 1)} s`);
  mkdirSync(RESULTS, { recursive: true });
  const file = `${RESULTS}${results.date.replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.json`;
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  log(`results: ${file}`);
}

/** The summary as a Markdown table, against issue 8's targets. */
function table(r: Results): string {
  const rows: string[][] = [];
  const floorAt = (n: number) => r.floors?.find((f) => f.streams === n);
  for (const [i, { name, ramp }] of (r.capacity?.sweeps ?? []).entries()) {
    const held = stepOf(ramp, ramp.held);
    rows.push([`(a) sessions held, ${name}`, `${ramp.held}${held ? ` (${lags(held)})` : ''}`, `≥ 800, p99 lags < ${LAG_P99_LIMIT_MS} ms`]);
    if (held) {
      const floor = floorAt(held.sessions);
      rows.push([
        `(a) server CPU per stream, ${name}`,
        `${held.serverUsPerFrame} µs/frame at ${held.sessions}` +
          (floor ? ` = ${round(held.serverUsPerFrame / floor.usPerFrame)}× floor (${us(floor.usPerFrame)} µs/frame CPU over ${floor.streams} states, same packets; fixtures ${us(floor.fixtureUsPerFrame)}, web-like ${us(floor.webUsPerFrame)})` : '') +
          `; GC ${round(held.gc.share * 100, 1)}% of server CPU (${held.gc.major} full GCs); server ${held.cpu.server}, generator ${held.cpu.generator}, machine ${held.cpu.machine} of 2 cores`,
        i === 0 ? '≤ 1.3× floor' : '',
      ]);
    }
    const fail = ramp.steps.find((s) => !s.held);
    if (fail) rows.push([`(a) first step missed, ${name}`, `${fail.sessions}: ${fail.why}`, '']);
    if (i > 0) continue;
    for (const n of [10, 100, ramp.held]) {
      const s = stepOf(ramp, n);
      if (s) rows.push([`(b) server-added latency at ${n}`, latency(s), n === 100 ? 'p99 < 2 ms' : '']);
    }
  }
  if (r.library) {
    const { result: lib, leanGeneratorUsPerFrame: lean } = r.library;
    rows.push([
      `(a) ${lib.sessions} sessions through EarshotClient`,
      `decision lag p50/p99 ${ms(lib.lagMs.p50)}/${ms(lib.lagMs.p99)} ms (n=${lib.lagMs.n}); client library ${lib.generatorUsPerFrame} µs/frame${lean !== undefined ? ` (lean generator ${lean})` : ''}; server ${lib.serverUsPerFrame} µs/frame`,
      '',
    ]);
  }
  if (r.capacity?.ws) rows.push(['(c) sessions held, ws', `${r.capacity.ws.held}`, '']);
  if (r.pipelineRatio)
    rows.push([
      '(c) full pipeline uWS / ws',
      `${r.pipelineRatio.ratio}× (${r.pipelineRatio.uwsFramesPerCoreS} vs ${r.pipelineRatio.wsFramesPerCoreS} frames per core-second at ${r.pipelineRatio.sessions} sessions)`,
      '',
    ]);
  if (r.transportAlone)
    rows.push(['(c) transport alone uWS / ws', `${r.transportAlone.ratio}× (${r.transportAlone.uws.framesPerServerCoreS} vs ${r.transportAlone.ws.framesPerServerCoreS} frames per core-second)`, '≥ 3×']);
  if (r.transportPaced)
    rows.push([
      `(c) transport alone, paced, ${r.transportPaced.connections} connections`,
      `${r.transportPaced.ratio}× (${r.transportPaced.uws.framesPerServerCoreS} vs ${r.transportPaced.ws.framesPerServerCoreS} frames per core-second)`,
      '≥ 3×',
    ]);
  if (r.batching) {
    const one = r.batching.runs[0]!;
    for (const b of r.batching.runs)
      rows.push([
        `(d) maxBatch ${b.maxBatch}, simulated engine`,
        `${b.turnsPerS} turns/s (${round(b.turnsPerS / one.turnsPerS, 2)}×), first delta p50 ${ms(b.firstDeltaMs.p50)} ms (${round(b.firstDeltaMs.p50 / one.firstDeltaMs.p50, 2)}×), ready → first delta p50 ${ms(b.readyToFirstDeltaMs.p50)} ms`,
        b.maxBatch === 8 ? '≥ 3× turns/s, ≤ 1.5× latency (simulated: a sleep-based cost model, not Gemma)' : '',
      ]);
  }
  for (const x of r.rest ?? [])
    rows.push([`(e) REST ${x.input}`, `${x.requestsPerS} req/s, latency p50/p99 ${ms(x.latencyMs.p50)}/${ms(x.latencyMs.p99)} ms, overhead p99 ${ms(x.overheadP99Ms)} ms`, '']);
  return ['| measure | result | target |', '|---|---|---|', ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');
}

function lags(s: StepResult): string {
  return `frame lag p50/p99 ${ms(s.frameLagMs.p50)}/${ms(s.frameLagMs.p99)} ms n=${s.frameLagMs.n}; decision lag ${ms(s.decisionLagMs.p50)}/${ms(s.decisionLagMs.p99)} ms n=${s.decisionLagMs.n}`;
}

function latency(s: StepResult): string {
  return (
    `speech end → engine start p50/p95/p99 ${ms(s.turnStartMs.p50)}/${ms(s.turnStartMs.p95)}/${ms(s.turnStartMs.p99)} ms; ` +
    `first delta → client ${ms(s.deliveryMs.p50)}/${ms(s.deliveryMs.p95)}/${ms(s.deliveryMs.p99)} ms; ` +
    `deciding frame sent → first delta received ${ms(s.endToEndMs.p50)}/${ms(s.endToEndMs.p95)}/${ms(s.endToEndMs.p99)} ms (n=${s.turnStartMs.n})`
  );
}

await main();
process.exit(0);
