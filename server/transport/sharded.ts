/**
 * `--shards N` on uWS: N worker threads, each with its own uWS app on the same port (SO_REUSEPORT),
 * each owning its sockets and decoding and segmenting their audio (a connection's `audio` host:
 * only segment events cross). Everything else behind the Transport interface (limits, sessions,
 * the scheduler and engine) stays on this thread, so limits, /metrics, /health and drain are
 * global and batches span every shard. A shard that fails is logged, its sockets closed with
 * 1011, and a new shard takes its place on the port.
 */
import { createServer } from 'node:net';
import type { Worker } from 'node:worker_threads';
import { EarshotError } from '../../protocol/errors.js';
import type { Logger } from '../observability/log.js';
import { deliverEvent, type AudioHost, type AudioStream, type StreamEntry, type StreamHandlers } from '../offload/host.js';
import type { StreamSpec } from '../offload/messages.js';
import { startThread } from '../threads.js';
import { CLOSE_SHARD_FAILED, type MainToShard, type ShardData, type ShardToMain } from './shard-messages.js';
import type { Connection, HttpRequest, HttpResponse, SocketHandler, Transport, TransportOptions } from './types.js';

class ShardConnection implements Connection, AudioHost {
  closed = false;
  constructor(
    private readonly shard: Shard,
    private readonly id: number,
    readonly remoteAddress: string,
  ) {}

  /** The socket's audio is decoded and segmented on its shard. */
  get audio(): AudioHost {
    return this;
  }

  attach(spec: StreamSpec, handlers: StreamHandlers): AudioStream {
    const { shard, id } = this;
    const entry: StreamEntry = { ...handlers, flushDone: [] };
    shard.streams.set(id, entry);
    shard.post({ t: 'attach', id, spec });
    let closed = false;
    return {
      // Only frames that reached this thread before the attach come here: they go back in order.
      push: (bytes, start) => {
        if (!closed) shard.post({ t: 'audio', id, data: bytes.slice(start) });
      },
      flush: (done) => {
        if (closed || shard.streams.get(id) !== entry) return done(false);
        entry.flushDone.push(done);
        shard.post({ t: 'flush', id });
      },
      close: () => {
        if (closed) return;
        closed = true;
        // A stream that a newer attach replaced was closed in the shard by that attach.
        if (shard.streams.get(id) !== entry) return;
        shard.streams.delete(id);
        shard.post({ t: 'detach', id });
      },
    };
  }

  send(data: Uint8Array | string): boolean {
    if (this.closed) return false;
    this.shard.post({ t: 'send', id: this.id, data });
    return true;
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.shard.post({ t: 'close', id: this.id, code, reason });
  }
}

interface ProxiedRequest {
  aborted: boolean;
  listeners: Array<() => void>;
  backlog: number;
  body?: { resolve: (body: Buffer) => void; reject: (err: Error) => void };
}

/** The main thread's side of one shard thread. */
class Shard {
  readonly sockets = new Map<number, { connection: ShardConnection; handler: SocketHandler }>();
  /** Streams the shard decodes, by socket id. */
  readonly streams = new Map<number, StreamEntry>();
  private readonly requests = new Map<number, ProxiedRequest>();
  private readonly worker: Worker;
  private readonly index: number;
  private stopping = false;
  readonly listening: Promise<void>;
  readonly exited: Promise<void>;

  constructor(
    data: ShardData,
    private readonly options: TransportOptions,
    private readonly logger: Logger,
    private readonly onFailure: (shard: Shard, reason: string) => void,
  ) {
    this.index = data.index;
    this.worker = startThread(import.meta.url, 'shard', { workerData: data });
    let listened!: () => void;
    let refused!: (err: Error) => void;
    this.listening = new Promise((resolve, reject) => ((listened = resolve), (refused = reject)));
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    let up = false;
    this.worker.on('message', (message: ShardToMain) => {
      if (message.t === 'listening') return void ((up = true), listened());
      if (message.t === 'listen-failed') return void refused(new Error(message.message));
      if (message.t === 'failed') return void this.fail(message.message);
      this.handle(message);
    });
    this.worker.on('error', (err) => (up ? this.fail(err.stack ?? err.message) : refused(err)));
    this.worker.once('exit', (code) => {
      if (!up) refused(new Error(`shard thread exited (${code}) before it listened`));
      else this.fail(`shard thread exited (${code})`);
    });
  }

  post(message: MainToShard): void {
    if (!this.stopping) this.worker.postMessage(message);
  }

  /** Closes every socket with `code`, then the listen socket, and waits for the thread to end. */
  async stop(code: number, reason: string): Promise<void> {
    this.worker.postMessage({ t: 'stop', code, reason } satisfies MainToShard);
    this.stopping = true;
    await this.exited;
  }

  private fail(reason: string): void {
    if (this.stopping) return;
    this.stopping = true;
    // The sessions this thread carried are gone: their handlers hear it, as from a closing client.
    for (const [id, { connection, handler }] of this.sockets) {
      this.sockets.delete(id);
      connection.closed = true;
      handler.close(CLOSE_SHARD_FAILED, 'server shard failed');
    }
    this.streams.clear();
    for (const request of this.requests.values()) this.abort(request);
    this.requests.clear();
    this.onFailure(this, reason);
  }

  private abort(request: ProxiedRequest): void {
    if (request.aborted) return;
    request.aborted = true;
    request.body?.reject(new Error('client went away'));
    for (const listener of request.listeners) listener();
  }

  private handle(message: ShardToMain): void {
    switch (message.t) {
      case 'upgrade': {
        const route = this.options.routes[message.route]!;
        const decision = route.upgrade({ ...message.request, query: new URLSearchParams(message.request.query) });
        if (!decision.accept) {
          this.post({ t: 'upgrade', id: message.id, accept: false, status: decision.status, body: decision.body, ...(decision.headers ? { headers: decision.headers } : {}) });
          return;
        }
        // Opened here, with the decision: the limits count it at once (no window for a burst to slip
        // past them while the shard upgrades), and what it sends waits in the shard until the socket opens.
        const connection = new ShardConnection(this, message.id, message.request.remoteAddress);
        this.sockets.set(message.id, { connection, handler: decision.open(connection) });
        this.post({ t: 'upgrade', id: message.id, accept: true, ...(decision.protocol ? { protocol: decision.protocol } : {}) });
        return;
      }
      case 'abandon':
        this.closed(message.id, 1006, 'client left during the upgrade');
        return;
      case 'message':
        this.sockets.get(message.id)?.handler.message(message.data, message.isBinary);
        // Whatever handling it sent the shard (a commit's flush) is ahead of this: the held audio may follow.
        if (message.hold) this.post({ t: 'resume', id: message.id });
        return;
      case 'hold':
        this.post({ t: 'resume', id: message.id });
        return;
      case 'stream': {
        const entry = this.streams.get(message.event.stream);
        if (entry) deliverEvent(entry, message.event);
        return;
      }
      case 'log': {
        const { level, msg, ...fields } = JSON.parse(message.line) as { level: number; msg?: string };
        this.logger[this.logger.levels.labels[level] as 'info']({ shard: this.index, ...fields }, msg);
        return;
      }
      case 'heard':
        message.ids.forEach((id, i) => this.sockets.get(id)?.handler.heard?.(message.frames[i]!));
        return;
      case 'closed':
        this.closed(message.id, message.code, message.reason);
        return;
      case 'http':
        this.http(message);
        return;
      case 'body': {
        const request = this.requests.get(message.id);
        const waiting = request?.body;
        if (!request || !waiting) return;
        request.body = undefined;
        if (message.data) waiting.resolve(Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength));
        else waiting.reject(message.error?.tooLarge ? new EarshotError('too_large', message.error.message) : new Error(message.error?.message ?? 'body not read'));
        return;
      }
      case 'http-aborted': {
        const request = this.requests.get(message.id);
        this.requests.delete(message.id);
        if (request) this.abort(request);
        return;
      }
      case 'backlog': {
        const request = this.requests.get(message.id);
        if (request) request.backlog = message.bytes;
        return;
      }
    }
  }

  private closed(id: number, code: number, reason: string): void {
    const socket = this.sockets.get(id);
    if (!socket) return;
    this.sockets.delete(id);
    socket.connection.closed = true;
    socket.handler.close(code, reason);
  }

  private http(message: Extract<ShardToMain, { t: 'http' }>): void {
    const { id } = message;
    const state: ProxiedRequest = { aborted: false, listeners: [], backlog: 0 };
    this.requests.set(id, state);
    let bodyRead = false;
    const request: HttpRequest = {
      method: message.method,
      path: message.path,
      query: new URLSearchParams(message.query),
      headers: message.headers,
      remoteAddress: message.remoteAddress,
      body: (limit) => {
        if (bodyRead) return Promise.reject(new Error('body already read'));
        if (state.aborted) return Promise.reject(new Error('client went away'));
        bodyRead = true;
        return new Promise<Buffer>((resolve, reject) => {
          state.body = { resolve, reject };
          this.post({ t: 'read-body', id, limit });
        });
      },
    };
    let done = false;
    const live = () => !state.aborted && !done;
    const response: HttpResponse = {
      get aborted() {
        return state.aborted;
      },
      onAbort: (listener) => state.listeners.push(listener),
      writeHead: (status, headers) => live() && this.post({ t: 'head', id, status, headers }),
      write: (chunk) => live() && this.post({ t: 'write', id, chunk }),
      end: (chunk) => {
        if (!live()) return;
        done = true;
        this.requests.delete(id);
        this.post({ t: 'end', id, ...(chunk === undefined ? {} : { chunk }) });
      },
      get bufferedBytes() {
        return state.backlog;
      },
      close: () => live() && this.post({ t: 'drop', id }),
    };
    this.options.http(request, response);
  }
}

/** What the shards need beyond the transport options. */
export type ShardOptions = Pick<ShardData, 'maxBodyBytes' | 'maxMessageBytes' | 'silero'>;

export class ShardedTransport implements Transport {
  readonly name: string;
  private readonly shards: Shard[] = [];
  private data: Omit<ShardData, 'index'> | undefined;
  private closing = false;

  constructor(
    private readonly count: number,
    private readonly sharding: ShardOptions,
    build: string,
    private readonly options: TransportOptions,
    private readonly logger: Logger,
  ) {
    this.name = `uws (${build}, ${count} shards)`;
  }

  async listen(host: string, port: number): Promise<number> {
    // Shards share the port, so none of them can refuse one already in use: Node's listen checks
    // it first (and picks the port when asked for any).
    const chosen = await probe(host, port);
    const { routes, maxPayloadBytes, maxBufferedBytes, closeGraceMs, tls } = this.options;
    const { maxBodyBytes, maxMessageBytes, silero } = this.sharding;
    this.data = { host, port: chosen, paths: routes.map((r) => r.path), maxPayloadBytes, maxBodyBytes, maxBufferedBytes, closeGraceMs, tls, maxMessageBytes, silero, logLevel: this.logger.level };
    for (let index = 0; index < this.count; index++) this.shards.push(this.start(index));
    const started = await Promise.allSettled(this.shards.map((s) => s.listening));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      await this.close();
      throw failed.reason;
    }
    return chosen;
  }

  /** Open websockets on each shard, in shard order (for /metrics). */
  shardConnections(): number[] {
    return this.shards.map((s) => s.sockets.size);
  }

  private start(index: number): Shard {
    return new Shard({ ...this.data!, index }, this.options, this.logger, (shard, reason) => {
      this.logger.error({ shard: index, reason }, 'a listening shard failed; its sockets closed with 1011, starting a new one');
      void shard.exited.then(() => {
        if (this.closing) return;
        const fresh = this.start(index);
        this.shards[index] = fresh;
        fresh.listening.catch((err: unknown) => this.logger.error({ shard: index, err }, 'a replacement shard could not listen'));
      });
    });
  }

  /** Tests only: makes shard `index` throw, as a bug in it would (no client can reach this); resolves once its replacement listens. */
  async failShard(index: number): Promise<void> {
    const failing = this.shards[index]!;
    failing.post({ t: 'fault' });
    await failing.exited;
    while (this.shards[index] === failing) await new Promise((resolve) => setImmediate(resolve));
    await this.shards[index]!.listening;
  }

  /** Tests only: shard `index`'s Silero thread fails its next call (a stream of that shard must have started it). */
  failSilero(index: number, message: string): void {
    this.shards[index]!.post({ t: 'fault', silero: message });
  }

  stopListening(): void {
    for (const shard of this.shards) shard.post({ t: 'stop-listening' });
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.shards.map((shard) => shard.stop(1001, 'server closing')));
  }
}

function probe(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, host, () => {
      const { port: chosen } = server.address() as { port: number };
      server.close(() => resolve(chosen));
    });
  });
}
