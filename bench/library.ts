/**
 * The same real-time Opus sessions as the capacity ramp, driven by the Node client library
 * users get (EarshotClient.sendAudio) instead of the lean generator: what the library costs per
 * frame, and that the server sees the same lag whoever sends.
 */
import { EarshotClient } from '../clients/node/index.js';
import { pipelineConfig } from './capacity.js';
import { ServerChild } from './child.js';
import { FRAME_MS, PacedPackets } from './load.js';
import { CpuWindow, round, Samples, type Percentiles } from './stats.js';

export interface LibraryResult {
  sessions: number;
  lagMs: Percentiles;
  generatorUsPerFrame: number;
  serverUsPerFrame: number;
  errors: number;
}

class LibrarySession {
  private pace = new PacedPackets(Infinity);

  constructor(
    readonly client: EarshotClient,
    private readonly packets: Uint8Array[],
    private readonly offset: number,
    lag: Samples,
  ) {
    client.on('vad', (m) => {
      if (m.state !== 'silence') return;
      const sentAt = this.pace.decidingPacketSentAt(m.atMs);
      if (!Number.isNaN(sentAt)) lag.add(performance.now() - sentAt);
    });
  }

  /** A random phase within the frame, as real clients have: all sessions sending in the same tick would queue behind each other. */
  start(at: number): void {
    this.pace = new PacedPackets(at + Math.random() * FRAME_MS);
  }

  tick(now: number): number {
    return this.pace.sendDue(now, this.sendPacket);
  }

  private readonly sendPacket = (index: number): void => {
    void this.client.sendAudio(this.packets[(this.offset + index) % this.packets.length]!);
  };
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
    for (const s of open) s.start(startAt);
    timer = setInterval(() => {
      const now = performance.now();
      for (const s of open) frames += s.tick(now);
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
