/** Realtime test helpers: a bare JSON websocket client that records every server event, and G.711 audio from sox. */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { OpenAIRealtimeWS } from 'openai/realtime/ws';
import WebSocket from 'ws';
import type { G711Law } from '../../server/audio/g711.js';

export type RealtimeEvent = { type: string; event_id: string; [key: string]: any };

const WAIT_LIMIT_MS = 20_000;

export class RealtimeClient {
  readonly events: RealtimeEvent[] = [];
  closeCode: number | undefined;
  private waiters: Array<() => void> = [];
  private readonly socket: WebSocket;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    // Listening starts before the handshake ends: session.created may arrive in the same read as the upgrade response.
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) throw new Error('the Realtime server sent a binary frame');
      this.events.push(JSON.parse(data.toString()) as RealtimeEvent);
      this.wake();
    });
    socket.on('close', (code) => {
      this.closeCode = code;
      this.wake();
    });
  }

  static async connect(url: string, options: { protocols?: string[]; headers?: Record<string, string>; rejectUnauthorized?: boolean } = {}): Promise<RealtimeClient> {
    const socket = new WebSocket(url, options.protocols ?? [], { headers: options.headers ?? {}, rejectUnauthorized: options.rejectUnauthorized ?? true });
    const client = new RealtimeClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused with HTTP ${res.statusCode}`)));
    });
    return client;
  }

  send(event: Record<string, unknown>): void {
    this.socket.send(JSON.stringify(event));
  }

  sendRaw(data: string | Buffer): void {
    this.socket.send(data);
  }

  get protocol(): string {
    return this.socket.protocol;
  }

  get open(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  ofType(type: string): RealtimeEvent[] {
    return this.events.filter((e) => e.type === type);
  }

  /** Resolves with the first event from index `from` on that matches; rejects after a generous limit (a failure guard, not a timing assertion). */
  async waitFor(match: (e: RealtimeEvent) => boolean, from = 0): Promise<RealtimeEvent> {
    const deadline = Date.now() + WAIT_LIMIT_MS;
    for (;;) {
      const found = this.events.slice(from).find(match);
      if (found) return found;
      if (this.closeCode !== undefined) throw new Error(`socket closed (${this.closeCode}) while waiting`);
      if (Date.now() > deadline) throw new Error(`timed out waiting; got ${this.events.map((e) => e.type).join(', ')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 250);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  waitForType(type: string, from = 0): Promise<RealtimeEvent> {
    return this.waitFor((e) => e.type === type, from);
  }

  /** Waits until `count` events of `type` arrived. */
  async waitForCount(type: string, count: number): Promise<RealtimeEvent[]> {
    await this.waitFor(() => this.ofType(type).length >= count);
    return this.ofType(type);
  }

  /** The close code, once the server has closed the socket (rejects after the same generous limit). */
  async waitForClose(): Promise<number> {
    const deadline = Date.now() + WAIT_LIMIT_MS;
    while (this.closeCode === undefined) {
      if (Date.now() > deadline) throw new Error('timed out waiting for the socket to close');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 250);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.closeCode;
  }

  close(): void {
    this.socket.close();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/** Event types from response.created to response.done, with runs of text deltas (GA or beta name) collapsed to one `<name>*` marker. */
export function responseShape(events: RealtimeEvent[], responseId: string): string[] {
  const from = events.findIndex((e) => e.type === 'response.created' && e.response.id === responseId);
  const to = events.findIndex((e) => e.type === 'response.done' && e.response.id === responseId);
  const shape: string[] = [];
  for (const e of events.slice(from, to + 1)) {
    const name = e.type === 'response.output_text.delta' || e.type === 'response.text.delta' ? `${e.type}*` : e.type;
    if (shape.at(-1) !== name) shape.push(name);
  }
  return shape;
}

/** Little-endian PCM16 bytes of `samples`, cut into appends of `ms` milliseconds at `rate`. */
export function pcmChunks(samples: Int16Array, rate: number, ms: number): Buffer[] {
  const per = (rate * ms) / 1000;
  const chunks: Buffer[] = [];
  for (let at = 0; at < samples.length; at += per) {
    const part = samples.subarray(at, Math.min(samples.length, at + per));
    chunks.push(Buffer.from(part.buffer, part.byteOffset, part.byteLength));
  }
  return chunks;
}

export function appendEvent(chunk: Uint8Array): Record<string, unknown> {
  return { type: 'input_audio_buffer.append', audio: Buffer.from(chunk).toString('base64') };
}

export const SOX_ENCODING: Record<G711Law, string> = { ulaw: 'u-law', alaw: 'a-law' };

/** A WAV file as 8 kHz G.711 bytes, encoded by sox into `out`. */
export async function g711Of(wavPath: string, law: G711Law, out: string): Promise<Buffer> {
  await promisify(execFile)('sox', ['-D', wavPath, '-r', '8000', '-c', '1', '-e', SOX_ENCODING[law], '-t', 'raw', out]);
  return readFile(out);
}

/**
 * Records every event an official-SDK Realtime client (OpenAIRealtimeWS) receives, and its
 * errors; `until` resolves with the probe's first truthy value, or rejects after `limitMs` (a
 * failure guard, not a timing assertion) naming the events seen.
 */
export function recordSdkEvents(rt: OpenAIRealtimeWS, limitMs = WAIT_LIMIT_MS) {
  const events: RealtimeEvent[] = [];
  const errors: unknown[] = [];
  let wake = () => {};
  rt.on('event', (e) => {
    events.push(e as unknown as RealtimeEvent);
    wake();
  });
  rt.on('error', (err) => errors.push(err));
  const until = async <T>(probe: () => T | undefined | false, what: string): Promise<T> => {
    const deadline = Date.now() + limitMs;
    for (let found = probe(); ; found = probe()) {
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${events.map((e) => e.type).join(', ')}`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 200);
      });
    }
  };
  return { events, errors, until };
}
