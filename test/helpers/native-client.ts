/** A bare native-protocol client for tests: real socket, msgpack frames, every server message recorded. */
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { decodeServerMessage, encodeClientMessage, encodeRawAudio } from '../../protocol/codec.js';
import type { ClientMessage, ServerMessage } from '../../protocol/native.js';

export interface TurnRecord {
  turnId: string;
  audioMs: number;
  startMs?: number;
  endMs?: number;
  text: string;
  finish?: string;
  error?: string;
}

export class TestClient {
  readonly messages: ServerMessage[] = [];
  closeCode: number | undefined;
  closeReason = '';
  private readonly socket: WebSocket;
  private waiters: Array<() => void> = [];

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on('message', (data: Buffer) => {
      this.messages.push(decodeServerMessage(data));
      this.wake();
    });
    socket.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      this.wake();
    });
  }

  static async connect(url: string, options: WebSocket.ClientOptions = {}): Promise<TestClient> {
    const socket = new WebSocket(url, options);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    return new TestClient(socket);
  }

  send(message: ClientMessage | Record<string, unknown>): void {
    this.socket.send(encodeClientMessage(message as ClientMessage));
  }

  sendRaw(bytes: Uint8Array | string): void {
    this.socket.send(bytes);
  }

  sendAudio(payload: Uint8Array): void {
    this.socket.send(encodeRawAudio(payload));
  }

  async hello(hello: Partial<Extract<ClientMessage, { type: 'hello' }>> & { codec: 'opus' | 'pcm16'; sampleRate: number }): Promise<Extract<ServerMessage, { type: 'ready' }>> {
    this.send({ type: 'hello', ...hello });
    return (await this.waitFor((m) => m.type === 'ready')) as Extract<ServerMessage, { type: 'ready' }>;
  }

  /** Streams packets, `frameMs` of audio each, at `speed` x real time (Infinity = as fast as the socket takes them). */
  async stream(packets: Uint8Array[], frameMs: number, speed = Infinity): Promise<void> {
    const started = performance.now();
    for (let i = 0; i < packets.length; i++) {
      this.sendAudio(packets[i]!);
      if (speed !== Infinity) {
        const due = started + ((i + 1) * frameMs) / speed;
        const wait = due - performance.now();
        if (wait > 1) await sleep(wait);
      } else if (i % 50 === 49) await sleep(0);
    }
  }

  async waitFor(predicate: (m: ServerMessage) => boolean, timeoutMs = 20_000, from = 0): Promise<ServerMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.slice(from).find(predicate);
      if (found) return found;
      if (this.closeCode !== undefined) throw new Error(`socket closed (${this.closeCode} ${this.closeReason}) while waiting`);
      if (Date.now() > deadline) throw new Error(`timed out waiting; got ${JSON.stringify(this.messages.map((m) => m.type))}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  async waitForClose(timeoutMs = 10_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.closeCode === undefined) {
      if (Date.now() > deadline) throw new Error('socket did not close');
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
    return this.closeCode;
  }

  /** Turns with their reply text, in order. */
  turns(): TurnRecord[] {
    const byId = new Map<string, TurnRecord>();
    for (const m of this.messages) {
      if (m.type === 'turn') {
        const record: TurnRecord = { turnId: m.turnId, audioMs: m.audioMs, text: '' };
        if (m.startMs !== undefined) record.startMs = m.startMs;
        if (m.endMs !== undefined) record.endMs = m.endMs;
        byId.set(m.turnId, record);
      } else if (m.type === 'delta') byId.get(m.turnId)!.text += m.text;
      else if (m.type === 'done') byId.get(m.turnId)!.finish = m.finish;
      else if (m.type === 'error' && m.turnId) byId.get(m.turnId)!.error = m.code;
    }
    return [...byId.values()];
  }

  async waitForTurnsDone(count: number, timeoutMs = 30_000): Promise<TurnRecord[]> {
    await this.waitFor(() => this.turns().filter((t) => t.finish || t.error).length >= count, timeoutMs);
    return this.turns();
  }

  close(): void {
    this.socket.close();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }

  terminate(): void {
    this.socket.terminate();
  }
}

/** PCM16 little-endian packets of `frameMs` from Int16 samples. */
export function pcmPackets(samples: Int16Array, sampleRate: number, frameMs = 20): Uint8Array[] {
  const per = (sampleRate * frameMs) / 1000;
  const packets: Uint8Array[] = [];
  for (let i = 0; i < samples.length; i += per) {
    const chunk = samples.subarray(i, Math.min(i + per, samples.length));
    packets.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength).slice());
  }
  return packets;
}
