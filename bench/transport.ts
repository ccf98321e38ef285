/**
 * (c) the transport alone: frames received and counted by a route that decodes nothing.
 * The sender writes pre-built WebSocket frames (masked with a zero key, as RFC 6455 allows)
 * straight to the TCP socket after a normal handshake, so the generator costs almost nothing
 * and the figure is the server's: frames per second of server CPU.
 */
import WebSocket from 'ws';
import { ServerChild } from './child.js';
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

function framesChunk(): Buffer {
  const frame = Buffer.alloc(2 + 4 + PAYLOAD_BYTES);
  frame[0] = 0x82; // FIN, binary
  frame[1] = 0x80 | PAYLOAD_BYTES; // masked, short length; the mask key stays 0
  for (let i = 0; i < PAYLOAD_BYTES - 1; i++) frame[7 + i] = (i * 37) & 0xff;
  return Buffer.concat(Array.from({ length: FRAMES_PER_CHUNK }, () => frame));
}

export async function runTransportAlone(kind: 'uws' | 'ws', durationMs: number): Promise<TransportResult> {
  const server = await ServerChild.start({ mode: 'transport', transport: kind });
  const chunk = framesChunk();
  const sockets: WebSocket[] = [];
  try {
    for (let i = 0; i < CONNECTIONS; i++) {
      const ws = new WebSocket(server.url, { perMessageDeflate: false });
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      sockets.push(ws);
    }
    let sending = true;
    const pump = (raw: import('node:net').Socket) => {
      while (sending && raw.write(chunk));
      if (sending) raw.once('drain', () => pump(raw));
    };
    await server.stats();
    const cpu = new CpuWindow(server.pid);
    for (const ws of sockets) pump((ws as unknown as { _socket: import('node:net').Socket })._socket);
    await new Promise((r) => setTimeout(r, durationMs));
    const used = cpu.read();
    const stats = await server.stats<TransportStats>();
    sending = false;
    return {
      transport: server.transport,
      framesPerS: Math.round(stats.frames / used.seconds),
      serverCores: round(used.server),
      framesPerServerCoreS: Math.round(stats.frames / used.seconds / used.server),
      generatorCores: round(used.generator),
    };
  } finally {
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
  const frame = framesChunk().subarray(0, 2 + 4 + PAYLOAD_BYTES);
  const raws: import('node:net').Socket[] = [];
  const sockets: WebSocket[] = [];
  let timer: NodeJS.Timeout | undefined;
  try {
    for (let i = 0; i < connections; i++) {
      const ws = new WebSocket(server.url, { perMessageDeflate: false });
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      sockets.push(ws);
      raws.push((ws as unknown as { _socket: import('node:net').Socket })._socket);
    }
    timer = setInterval(() => {
      for (const raw of raws) raw.write(frame);
    }, 20);
    await new Promise((r) => setTimeout(r, 500));
    await server.stats();
    const cpu = new CpuWindow(server.pid);
    await new Promise((r) => setTimeout(r, durationMs));
    const used = cpu.read();
    const { frames } = await server.stats<TransportStats>();
    return {
      transport: server.transport,
      connections,
      framesPerS: Math.round(frames / used.seconds),
      serverCores: round(used.server),
      framesPerServerCoreS: Math.round(frames / used.seconds / used.server),
      generatorCores: round(used.generator),
    };
  } finally {
    clearInterval(timer);
    for (const ws of sockets) ws.terminate();
    await server.stop();
  }
}
