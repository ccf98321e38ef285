/**
 * (c) the transport alone: frames received and counted by a route that decodes nothing.
 * The sender writes pre-built WebSocket frames (masked with a zero key, as RFC 6455 allows)
 * straight to the TCP socket after a normal handshake, so the generator costs almost nothing
 * and the figure is the server's: frames per second of server CPU.
 */
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { ServerChild } from './child.js';
import { tcpOf, wsFrame } from './load.js';
import type { TransportStats } from './server-process.js';
import { CpuWindow, round } from './stats.js';

export interface TransportResult {
  transport: string;
  framesPerS: number;
  serverCores: number;
  framesPerServerCoreS: number;
  generatorCores: number;
}

/** A typical 20 ms Opus packet at 16 kHz speech bitrates, plus the raw-audio tag byte. */
const PAYLOAD_BYTES = 61;
const FRAMES_PER_CHUNK = 1024;
const CONNECTIONS = 8;

/** One client frame: the raw-audio tag (0) and 60 bytes standing for an Opus packet. */
const FRAME = wsFrame(Uint8Array.from({ length: PAYLOAD_BYTES }, (_, i) => (i === 0 ? 0 : ((i - 1) * 37) & 0xff)));

/** Opens `count` connections after a normal handshake, recording each in `sockets` (for cleanup), and returns their TCP sockets. */
async function openConnections(url: string, count: number, sockets: WebSocket[]): Promise<Socket[]> {
  for (let i = 0; i < count; i++) {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    sockets.push(ws);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
  }
  return sockets.map(tcpOf);
}

async function resultOf(server: ServerChild, cpu: CpuWindow): Promise<TransportResult> {
  const used = cpu.read();
  const { frames } = await server.stats<TransportStats>();
  return {
    transport: server.transport,
    framesPerS: Math.round(frames / used.seconds),
    serverCores: round(used.server),
    framesPerServerCoreS: Math.round(frames / used.seconds / used.server),
    generatorCores: round(used.generator),
  };
}

export async function runTransportAlone(kind: 'uws' | 'ws', durationMs: number): Promise<TransportResult> {
  const server = await ServerChild.start({ mode: 'transport', transport: kind });
  const chunk = Buffer.concat(Array.from({ length: FRAMES_PER_CHUNK }, () => FRAME));
  const sockets: WebSocket[] = [];
  let sending = true;
  try {
    const raws = await openConnections(server.url, CONNECTIONS, sockets);
    const pump = (raw: Socket) => {
      while (sending && raw.write(chunk));
      if (sending) raw.once('drain', () => pump(raw));
    };
    await server.stats();
    const cpu = new CpuWindow(server.pid);
    for (const raw of raws) pump(raw);
    await new Promise((r) => setTimeout(r, durationMs));
    return await resultOf(server, cpu);
  } finally {
    sending = false;
    for (const ws of sockets) ws.terminate();
    await server.stop();
  }
}

/**
 * The transport alone the way voice traffic looks: many connections, each one 20 ms frame
 * per TCP segment at real-time pace, so per-connection and per-syscall costs show (the
 * saturating test above hides them by packing 1024 frames per write).
 */
export async function runTransportPaced(kind: 'uws' | 'ws', connections: number, durationMs: number): Promise<TransportResult & { connections: number }> {
  const server = await ServerChild.start({ mode: 'transport', transport: kind });
  const sockets: WebSocket[] = [];
  let timer: NodeJS.Timeout | undefined;
  try {
    const raws = await openConnections(server.url, connections, sockets);
    timer = setInterval(() => {
      for (const raw of raws) raw.write(FRAME);
    }, 20);
    await new Promise((r) => setTimeout(r, 500));
    await server.stats();
    const cpu = new CpuWindow(server.pid);
    await new Promise((r) => setTimeout(r, durationMs));
    return { ...(await resultOf(server, cpu)), connections };
  } finally {
    clearInterval(timer);
    for (const ws of sockets) ws.terminate();
    await server.stop();
  }
}
