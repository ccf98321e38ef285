/**
 * (e) REST: POST /v1/chat/completions with 5 s of real speech as a WAV and as an MP3
 * (base64 `input_audio`), a few requests in flight, against the echo test engine with no
 * token delay. The engine then costs next to nothing, so the whole latency is the server's
 * overhead: HTTP, JSON, base64, audio decode and resampling, scheduling, the reply.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ECHO_MODEL_ID } from '../server/engines/echo/engine.js';
import type { SpeechFixture } from '../test/fixtures/speech.js';
import { pipelineConfig } from './capacity.js';
import { ServerChild } from './child.js';
import { percentiles, round, type Percentiles } from './stats.js';

export interface RestResult {
  input: string;
  bytes: number;
  requestsPerS: number;
  latencyMs: Percentiles;
  /** With an engine that takes no time, latency is all overhead. */
  overheadP99Ms: number;
  failures: number;
}

const IN_FLIGHT = 4;
const CLIP_MS = 5000;

function wav16k(samples: Float32Array): Buffer {
  const data = Buffer.alloc(samples.length * 2);
  for (let i = 0; i < samples.length; i++) data.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(samples[i]! * 32767))), i * 2);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(16000, 24);
  header.writeUInt32LE(32000, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}

async function mp3Of(wav: Buffer): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'earshot-bench-'));
  try {
    await writeFile(join(dir, 'in.wav'), wav);
    await promisify(execFile)('lame', ['--quiet', '-b', '64', join(dir, 'in.wav'), join(dir, 'out.mp3')]);
    return await readFile(join(dir, 'out.mp3'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function load(url: string, body: string, durationMs: number): Promise<{ latencies: number[]; failures: number; seconds: number }> {
  const latencies: number[] = [];
  let failures = 0;
  const until = performance.now() + durationMs;
  const start = performance.now();
  const worker = async () => {
    while (performance.now() < until) {
      const t0 = performance.now();
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      await res.arrayBuffer();
      if (res.ok) latencies.push(performance.now() - t0);
      else failures++;
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return { latencies, failures, seconds: (performance.now() - start) / 1000 };
}

export async function runRest(fixture: SpeechFixture, durationMs: number, log: (line: string) => void): Promise<RestResult[]> {
  const wav = wav16k(fixture.samples16k.subarray(0, (CLIP_MS * 16000) / 1000));
  const inputs: [string, string, Buffer][] = [
    ['wav', 'wav', wav],
    ['mp3', 'mp3', await mp3Of(wav)],
  ];
  const server = await ServerChild.start({ mode: 'pipeline', config: pipelineConfig('uws') });
  const url = `${server.url.replace(/^ws/, 'http').replace(/\/v1\/stream$/, '')}/v1/chat/completions`;
  const results: RestResult[] = [];
  try {
    for (const [name, format, bytes] of inputs) {
      const body = JSON.stringify({
        model: ECHO_MODEL_ID,
        messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: bytes.toString('base64'), format } }] }],
      });
      await load(url, body, Math.min(500, durationMs / 4)); // warm-up
      const { latencies, failures, seconds } = await load(url, body, durationMs);
      const latencyMs = percentiles(latencies);
      const r: RestResult = { input: `5 s ${name} (${bytes.length} bytes)`, bytes: bytes.length, requestsPerS: round(latencies.length / seconds, 1), latencyMs, overheadP99Ms: latencyMs.p99, failures };
      results.push(r);
      log(`  ${r.input}: ${r.requestsPerS} req/s with ${IN_FLIGHT} in flight, latency p50/p99 ${round(latencyMs.p50, 1)}/${round(latencyMs.p99, 1)} ms, ${failures} failed`);
    }
  } finally {
    await server.stop();
  }
  return results;
}
