/**
 * `npm run bench` (at most ~5 min) and `npm run bench -- --quick` (under 60 s).
 * Starts the server itself in a child process, drives it from this one over 127.0.0.1, and
 * prints a table; JSON goes to bench/results/<timestamp>.json. Every load is bounded in
 * sessions and time and stops by itself.
 *   --quick            fewer, shorter steps
 *   --only a,b,c,d,e   run only these scenarios (floor and capacity go together)
 *   --profile          run the uWS capacity ramp's server under node --cpu-prof (bench/results/)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
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

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const profile = args.includes('--profile');
const onlyArg = args.indexOf('--only');
const only = new Set(onlyArg >= 0 ? args[onlyArg + 1]!.split(',') : ['a', 'b', 'c', 'd', 'e']);
/** One audio thread per core: the event loop then only moves bytes (see bench/RESULTS.md). */
const AUDIO_THREADS = cpus().length;
const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));

const MODE = quick
  ? { steps: [10, 100, 300, 400], librarySessions: 100, warmupMs: 600, windowMs: 2000, wsSteps: [200, 300], threadSteps: [300, 500, 600], transportMs: 1000, pacedConnections: 1000, pacedMs: 2000, batchMs: 2000, batchWarmupMs: 500, restMs: 1000, floorMs: 300 }
  : {
      steps: [10, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000],
      threadSteps: [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000],
      librarySessions: 300,
      warmupMs: 1000,
      windowMs: 6000,
      wsSteps: [100, 200, 300, 400, 500, 600, 700, 800],
      transportMs: 4000,
      pacedConnections: 2000,
      pacedMs: 5000,
      batchMs: 6000,
      batchWarmupMs: 1000,
      restMs: 5000,
      floorMs: 1500,
    };

const log = (line: string) => process.stdout.write(`${line}\n`);
const ms = (x: number) => (Number.isFinite(x) ? round(x, 1).toString() : '–');
const stepOf = (ramp: RampResult, sessions: number) => ramp.steps.find((s) => s.sessions === sessions);

interface Results {
  date: string;
  command: string;
  machine: { cpus: number; model: string; node: string; loadavg: number[] };
  floor?: FloorResult;
  capacity?: { uws: RampResult; ws?: RampResult; audioThreads?: RampResult; cpuPerStreamRatio?: number };
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
  const voices = fixtures.map((f) => voiceOf(f.opusPackets));

  if (only.has('a') || only.has('b') || only.has('c')) {
    log('(floor) Opus decode + WebRTC VAD per 20 ms frame, nothing else');
    const floor = await measureFloor(fixtures[0]!.opusPackets, MODE.floorMs);
    results.floor = floor;
    log(`  ${round(floor.usPerFrame, 1)} µs/frame (decode ${round(floor.decodeUsPerFrame, 1)}, VAD ${round(floor.vadUsPerFrame, 1)}) = ${Math.round(floor.streamsPerCore)} streams/core`);
    log('(a, b) capacity ramp, real-time Opus sessions, uWS');
    const uws = await runRamp(voices, { transport: 'uws', steps: MODE.steps, warmupMs: MODE.warmupMs, windowMs: MODE.windowMs, log, ...(profile ? { profileDir: RESULTS } : {}) });
    results.capacity = { uws };
    const best = stepOf(uws, uws.held);
    if (best) results.capacity.cpuPerStreamRatio = round(best.serverUsPerFrame / floor.usPerFrame);
    log(`(a) capacity again with decode + VAD on audio threads (--audio-threads ${AUDIO_THREADS})`);
    results.capacity.audioThreads = await runRamp(voices, { transport: 'uws', steps: MODE.threadSteps, warmupMs: MODE.warmupMs, windowMs: MODE.windowMs, config: { audioThreads: AUDIO_THREADS }, log });
    log(`(a) ${MODE.librarySessions} sessions driven by the Node client library (EarshotClient.sendAudio)`);
    const library = await runLibrary(fixtures.map((f) => f.opusPackets), MODE.librarySessions, MODE.warmupMs, MODE.windowMs);
    const lean = stepOf(uws, MODE.librarySessions);
    results.library = { result: library, ...(lean ? { leanGeneratorUsPerFrame: round((lean.cpu.generator * 1e6) / lean.framesPerS, 1) } : {}) };
    log(`  lag p50/p99 ${ms(library.lagMs.p50)}/${ms(library.lagMs.p99)} ms (n=${library.lagMs.n}), library ${library.generatorUsPerFrame} µs/frame, server ${library.serverUsPerFrame} µs/frame, ${library.errors} errors`);
    if (only.has('c')) {
      log('(c) full pipeline on ws');
      const ws = await runRamp(voices, { transport: 'ws', steps: MODE.wsSteps, warmupMs: MODE.warmupMs, windowMs: MODE.windowMs, log });
      results.capacity.ws = ws;
      // Compare at the largest step both ran, so both did the same work.
      const common = [...ws.steps].reverse().find((s) => stepOf(uws, s.sessions));
      if (common) {
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
    log(`(d) batching, simulated engine (${JSON.stringify(SIM_MODEL)}), ${BATCHING_USERS} users in a closed loop`);
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
  const cap = r.capacity;
  if (r.floor && cap) {
    const held = stepOf(cap.uws, cap.uws.held);
    rows.push(['floor: decode + VAD', `${round(r.floor.usPerFrame, 1)} µs/frame = ${Math.round(r.floor.streamsPerCore)} streams/core`, '≈ 870 streams/core']);
    rows.push(['(a) sessions held, uWS', `${cap.uws.held}${held ? ` (lag p99 ${ms(held.lagMs.p99)} ms)` : ''}`, `≥ 800, p99 lag < ${LAG_P99_LIMIT_MS} ms`]);
    if (held) {
      rows.push(['(a) server CPU per stream', `${held.serverUsPerFrame} µs/frame = ${cap.cpuPerStreamRatio}× floor (at ${held.sessions})`, '≤ 1.3× floor']);
      rows.push(['(a) CPU at that step', `server ${held.cpu.server}, generator ${held.cpu.generator}, machine ${held.cpu.machine} of 2 cores`, '']);
    }
    const fail = cap.uws.steps.find((s) => !s.held);
    if (fail) rows.push(['(a) first step missed', `${fail.sessions}: ${fail.why}`, '']);
    for (const n of [10, 100, cap.uws.held]) {
      const s = stepOf(cap.uws, n);
      if (!s) continue;
      rows.push([`(b) server-added latency at ${n}`, latency(s), n === 100 ? 'p99 < 2 ms' : '']);
    }
    if (cap.audioThreads) {
      const threaded = stepOf(cap.audioThreads, cap.audioThreads.held);
      rows.push([
        `(a) sessions held, uWS, --audio-threads ${AUDIO_THREADS}`,
        `${cap.audioThreads.held}${threaded ? ` (lag p99 ${ms(threaded.lagMs.p99)} ms, ${threaded.serverUsPerFrame} µs/frame, server ${threaded.cpu.server} cores)` : ''}`,
        `≥ 800, p99 lag < ${LAG_P99_LIMIT_MS} ms`,
      ]);
      const missed = cap.audioThreads.steps.find((step) => !step.held);
      if (missed) rows.push([`(a) first step missed, --audio-threads ${AUDIO_THREADS}`, `${missed.sessions}: ${missed.why}`, '']);
    }
    if (r.library) {
      const { result: lib, leanGeneratorUsPerFrame: lean } = r.library;
      rows.push([
        `(a) ${lib.sessions} sessions through EarshotClient`,
        `lag p50/p99 ${ms(lib.lagMs.p50)}/${ms(lib.lagMs.p99)} ms; client library ${lib.generatorUsPerFrame} µs/frame${lean !== undefined ? ` (lean generator ${lean})` : ''}; server ${lib.serverUsPerFrame} µs/frame`,
        '',
      ]);
    }
    if (cap.ws) rows.push(['(c) sessions held, ws', `${cap.ws.held}`, '']);
  }
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
        `(d) maxBatch ${b.maxBatch}`,
        `${b.turnsPerS} turns/s (${round(b.turnsPerS / one.turnsPerS, 2)}×), first delta p50 ${ms(b.firstDeltaMs.p50)} ms (${round(b.firstDeltaMs.p50 / one.firstDeltaMs.p50, 2)}×), ready → first delta p50 ${ms(b.readyToFirstDeltaMs.p50)} ms`,
        b.maxBatch === 8 ? '≥ 3× turns/s, ≤ 1.5× latency' : '',
      ]);
  }
  for (const x of r.rest ?? [])
    rows.push([`(e) REST ${x.input}`, `${x.requestsPerS} req/s, latency p50/p99 ${ms(x.latencyMs.p50)}/${ms(x.latencyMs.p99)} ms, overhead p99 ${ms(x.overheadP99Ms)} ms`, '']);
  return ['| measure | result | target |', '|---|---|---|', ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');
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
