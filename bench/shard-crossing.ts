/**
 * What one turn costs to cross between a listening shard and the main thread (issue 17's
 * scaling estimate): the shard posts the turn's segment events (speech_started, then
 * speech_stopped carrying the utterance, transferred), the main thread answers with the messages
 * a text turn sends back through the shard (vad speech, vad silence, turn, deltas, done), and the
 * shard starts the next turn when `done` arrives. One turn at a time, so every crossing also
 * pays the receiving thread's wake-up, as sparse turns do in the server. CPU time of the whole
 * process (both threads) per turn, and per message crossed.
 *
 *   node --import tsx bench/shard-crossing.ts [--turns 5000] [--utterance-ms 2000] [--deltas 20]
 */
import { Worker } from 'node:worker_threads';
import type { MainToShard, ShardToMain } from '../server/transport/shard-messages.js';
import { round } from './stats.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const TURNS = arg('turns', 5000);
const UTTERANCE_SAMPLES = (arg('utterance-ms', 2000) * 16000) / 1000;
const DELTAS = arg('deltas', 20);
const WARMUP = Math.min(500, TURNS / 10);

// The shard's side, plain JavaScript so the measured thread loads nothing but this.
const shard = `
const { parentPort, workerData } = require('node:worker_threads');
const { samples } = workerData;
let turn = 0;
function next() {
  parentPort.postMessage({ t: 'stream', event: { stream: 1, type: 'speech_started', atMs: turn * 3000 } });
  const audio = new Float32Array(samples);
  parentPort.postMessage({ t: 'stream', event: { stream: 1, type: 'speech_stopped', atMs: turn * 3000 + 2500, startMs: turn * 3000, endMs: turn * 3000 + 2000, reason: 'silence', audio } }, [audio.buffer]);
  turn++;
}
parentPort.on('message', (m) => {
  if (m.t === 'stop') return parentPort.close();
  if (m.t === 'send' && m.done) next();
});
next();
`;

const worker = new Worker(shard, { eval: true, workerData: { samples: UTTERANCE_SAMPLES } });
// A msgpack-sized reply message: what the native door sends per delta.
const small = () => new Uint8Array(48);
let turns = 0;
let started = process.cpuUsage();
let startedAt = performance.now();
const finished = new Promise<void>((resolve) => {
  worker.on('message', (message: ShardToMain) => {
    if (message.t !== 'stream') return;
    const { event } = message;
    const send = (done = false) => worker.postMessage({ t: 'send', id: 1, data: small(), ...(done ? { done } : {}) } satisfies MainToShard & { done?: boolean });
    if (event.type === 'speech_started') return send();
    if (event.type !== 'speech_stopped') return;
    send(); // vad silence
    send(); // turn
    for (let i = 0; i < DELTAS; i++) send();
    turns++;
    if (turns === WARMUP) {
      started = process.cpuUsage();
      startedAt = performance.now();
    }
    if (turns === TURNS) return resolve();
    send(true);
  });
});
await finished;
const used = process.cpuUsage(started);
const wallS = (performance.now() - startedAt) / 1000;
worker.postMessage({ t: 'stop' });
const measured = TURNS - WARMUP;
const cpuUs = used.user + used.system;
const messagesPerTurn = 2 + 4 + DELTAS;
const result = {
  turns: measured,
  utteranceMs: (UTTERANCE_SAMPLES * 1000) / 16000,
  messagesPerTurn,
  usPerTurn: round(cpuUs / measured, 1),
  usPerMessage: round(cpuUs / measured / messagesPerTurn, 2),
  cores: round(cpuUs / 1e6 / wallS, 2),
};
process.stdout.write(
  `shard ↔ main crossing: ${result.usPerTurn} µs CPU per turn (${messagesPerTurn} messages: 2 segment events with a ${result.utteranceMs} ms utterance transferred, ` +
    `${4 + DELTAS} replies: vad speech, vad silence, turn, deltas, done), ${result.usPerMessage} µs per message, over ${measured} turns one at a time (${result.cores} cores busy)\n`,
);
process.stdout.write(`${JSON.stringify(result)}\n`);
