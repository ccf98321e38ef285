/**
 * The same real-time Opus sessions as the capacity ramp, driven by the Node client library
 * users get (EarshotClient.sendAudio) instead of the lean generator: what the library costs per
 * frame, and that the server sees the same lag whoever sends.
 */
import { EarshotClient } from '../clients/node/index.js';
import { pipelineConfig } from './capacity.js';
import { ServerChild } from './child.js';
import { CpuWindow, round, Samples, type Percentiles } from './stats.js';

const FRAME_MS = 20;
const RING = 512;

export interface LibraryResult {
  sessions: number;
  lagMs: Percentiles;
  generatorUsPerFrame: number;
  serverUsPerFrame: number;
  errors: number;
}

class LibrarySession {
  private readonly sendTimes = new Float64Array(RING);
  private sent = 0;
  /** A random phase within the frame, as real clients have: all sessions sending in the same tick would queue behind each other. */
  private readonly phaseMs = Math.random() * FRAME_MS;

  constructor(
    readonly client: EarshotClient,
    private readonly packets: Uint8Array[],
    private readonly offset: number,
    lag: Samples,
  ) {
    client.on('vad', (m) => {
      if (m.state !== 'silence') return;
      const packet = m.atMs / FRAME_MS - 1;
      if (packet < this.sent && this.sent - packet <= RING) lag.add(performance.now() - this.sendTimes[packet % RING]!);
    });
  }

  /** Sends every frame due since `startAt`, at real-time pace. */
  tick(startAt: number, now: number): number {
    let frames = 0;
    while (startAt + this.phaseMs + this.sent * FRAME_MS <= now) {
      void this.client.sendAudio(this.packets[(this.offset + this.sent) % this.packets.length]!);
      this.sendTimes[this.sent % RING] = performance.now();
      this.sent++;
      frames++;
    }
    return frames;
  }
}

export async function runLibrary(packetSets: Uint8Array[][], sessions: number, warmupMs: number, windowMs: number): Promise<LibraryResult> {
  const server = await ServerChild.start({ mode: 'pipeline', config: pipelineConfig('uws') });
  const lag = new Samples();
  const open: LibrarySession[] = [];
  let errors = 0;
  let frames = 0;
  let timer: NodeJS.Timeout | undefined;
  try {
    for (let i = 0; i < sessions; i++) {
      const client = new EarshotClient({ url: server.url, codec: 'opus', sampleRate: 16000 });
      client.on('error', () => errors++);
      client.on('busy', () => errors++);
      await client.connect();
      const packets = packetSets[i % packetSets.length]!;
      open.push(new LibrarySession(client, packets, Math.floor(Math.random() * packets.length), lag));
    }
    const startAt = performance.now();
    timer = setInterval(() => {
      const now = performance.now();
      for (const s of open) frames += s.tick(startAt, now);
    }, 2);
    await new Promise((r) => setTimeout(r, warmupMs));
    lag.reset();
    frames = 0;
    const cpu = new CpuWindow(server.pid);
    await new Promise((r) => setTimeout(r, windowMs));
    const used = cpu.read();
    const framesPerS = frames / used.seconds;
    return {
      sessions,
      lagMs: lag.summary(),
      generatorUsPerFrame: round((used.generator * 1e6) / framesPerS, 1),
      serverUsPerFrame: round((used.server * 1e6) / framesPerS, 1),
      errors,
    };
  } finally {
    clearInterval(timer);
    for (const s of open) s.client.close();
    await server.stop();
  }
}
