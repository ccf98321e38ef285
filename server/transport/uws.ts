/**
 * uWebSockets.js transport. The official build is published on GitHub, not npm; `loadUws`
 * takes the first of UWS_BUILDS that loads on this platform (official, newer npm mirror,
 * older npm mirror). Message ArrayBuffers are neutered when a handler returns, so
 * handlers get a view that is valid only during the call (the SocketHandler contract).
 */
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { CLOSE_GOING_AWAY, EarshotError } from '../../protocol/errors.js';
import { CLOSE_SLOW_READER, STATUS_TEXT, type Connection, type HttpRequest, type HttpResponse, type SocketHandler, type Transport, type TransportOptions, type UpgradeDecision, type UpgradeRequest } from './types.js';

/** A listening shard decides upgrades on the main thread, so its routes may answer later. */
export interface UwsRoute {
  path: string;
  upgrade(request: UpgradeRequest): UpgradeDecision | Promise<UpgradeDecision>;
}

export interface UwsOptions extends Omit<TransportOptions, 'routes'> {
  routes: UwsRoute[];
  /** Join a port other shards listen on (SO_REUSEPORT) instead of refusing a port already in use. */
  sharedPort?: boolean;
}

/* The subset of the uWebSockets.js API used here, typed locally so every build fits. */
interface UwsWebSocket {
  getUserData(): UserData;
  send(message: Uint8Array | string, isBinary: boolean): number;
  getBufferedAmount(): number;
  end(code?: number, reason?: string): void;
  getRemoteAddressAsText(): ArrayBuffer;
}
interface UwsHttpRequest {
  getUrl(): string;
  getQuery(): string | undefined;
  getMethod(): string;
  getHeader(name: string): string;
  forEach(cb: (key: string, value: string) => void): void;
}
interface UwsHttpResponse {
  onAborted(cb: () => void): UwsHttpResponse;
  onData(cb: (chunk: ArrayBuffer, isLast: boolean) => void): UwsHttpResponse;
  writeStatus(status: string): UwsHttpResponse;
  writeHeader(key: string, value: string): UwsHttpResponse;
  write(chunk: Uint8Array | string): boolean;
  end(body?: Uint8Array | string, closeConnection?: boolean): UwsHttpResponse;
  cork(cb: () => void): UwsHttpResponse;
  onWritable(handler: (offset: number) => boolean): UwsHttpResponse;
  upgrade(userData: UserData, key: string, protocol: string, extensions: string, context: unknown): void;
  getRemoteAddressAsText(): ArrayBuffer;
  close(): UwsHttpResponse;
}
interface UwsApp {
  ws(pattern: string, behavior: Record<string, unknown>): UwsApp;
  any(pattern: string, handler: (res: UwsHttpResponse, req: UwsHttpRequest) => void): UwsApp;
  listen(host: string, port: number, options: number, cb: (token: unknown) => void): UwsApp;
}
interface UwsModule {
  App(): UwsApp;
  SSLApp(options: { cert_file_name: string; key_file_name: string }): UwsApp;
  us_listen_socket_close(token: unknown): void;
  us_socket_local_port(token: unknown): number;
  LIBUS_LISTEN_EXCLUSIVE_PORT: number;
}

interface UserData {
  open: (connection: Connection) => SocketHandler;
  remoteAddress: string;
  connection?: UwsConnection;
  handler?: SocketHandler;
}

export const UWS_BUILDS = ['uWebSockets.js', '@btc-vision/uwebsockets.js', '@trufflesuite/uws-js-unofficial'] as const;

export interface UwsLoadResult {
  module?: UwsModule;
  build?: string;
  failures: Array<{ build: string; reason: string }>;
}

export function loadUws(): UwsLoadResult {
  const require = createRequire(import.meta.url);
  const failures: UwsLoadResult['failures'] = [];
  for (const build of UWS_BUILDS) {
    try {
      return { module: require(build) as UwsModule, build, failures };
    } catch (err) {
      failures.push({ build, reason: (err as Error).message.split('\n')[0]!.slice(0, 200) });
    }
  }
  return { failures };
}

const text = (buffer: ArrayBuffer) => Buffer.from(buffer).toString();

class UwsConnection implements Connection {
  readonly remoteAddress: string;
  closed = false;
  private readonly ws: UwsWebSocket;
  private readonly maxBuffered: number;

  constructor(ws: UwsWebSocket, remoteAddress: string, maxBuffered: number) {
    this.ws = ws;
    this.remoteAddress = remoteAddress;
    this.maxBuffered = maxBuffered;
  }

  send(data: Uint8Array | string): boolean {
    if (this.closed) return false;
    if (this.ws.getBufferedAmount() > this.maxBuffered) {
      this.close(CLOSE_SLOW_READER, 'client is not reading');
      return false;
    }
    // 0 = buffered (backpressure), 1 = sent, 2 = dropped over maxBackpressure; the check above closes slow readers.
    return this.ws.send(data, typeof data !== 'string') !== 2;
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.end(code, reason);
  }
}

export class UwsTransport implements Transport {
  readonly name: string;
  private readonly app: UwsApp;
  private readonly uws: UwsModule;
  private token: unknown;
  private readonly open = new Set<UwsConnection>();

  private readonly sharedPort: boolean;

  constructor(uws: UwsModule, build: string, options: UwsOptions) {
    this.uws = uws;
    this.sharedPort = options.sharedPort ?? false;
    this.name = `uws (${build})`;
    this.app = options.tls ? sslApp(uws, options.tls) : uws.App();
    for (const route of options.routes) {
      this.app.ws(route.path, {
        compression: 0,
        maxPayloadLength: options.maxPayloadBytes,
        maxBackpressure: options.maxBufferedBytes * 2,
        closeOnBackpressureLimit: true,
        idleTimeout: 0,
        upgrade: (res: UwsHttpResponse, req: UwsHttpRequest, context: unknown) => {
          const headers: Record<string, string> = {};
          req.forEach((key, value) => (headers[key] = value));
          const protocols = (headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter(Boolean);
          const remoteAddress = text(res.getRemoteAddressAsText());
          const answer = (decision: UpgradeDecision) => {
            if (!decision.accept) {
              res.writeStatus(`${decision.status} ${STATUS_TEXT[decision.status] ?? 'Error'}`);
              for (const [k, v] of Object.entries(decision.headers ?? {})) res.writeHeader(k, v);
              res.writeHeader('content-type', 'application/json').end(decision.body, true);
              return;
            }
            const userData: UserData = { open: decision.open, remoteAddress };
            res.upgrade(userData, headers['sec-websocket-key'] ?? '', decision.protocol ?? '', headers['sec-websocket-extensions'] ?? '', context);
          };
          const decision = route.upgrade({ path: req.getUrl(), query: new URLSearchParams(req.getQuery() ?? ''), headers, protocols, remoteAddress });
          if (!(decision instanceof Promise)) return answer(decision);
          // Answered later: uWS needs an abort handler meanwhile, and the answer corked.
          let aborted = false;
          res.onAborted(() => (aborted = true));
          void decision.then((late) => {
            if (aborted) return void (late.accept && late.abandon?.());
            res.cork(() => answer(late));
          });
        },
        open: (ws: UwsWebSocket) => {
          const data = ws.getUserData();
          data.connection = new UwsConnection(ws, data.remoteAddress, options.maxBufferedBytes);
          this.open.add(data.connection);
          data.handler = data.open(data.connection);
        },
        message: (ws: UwsWebSocket, message: ArrayBuffer, isBinary: boolean) => {
          ws.getUserData().handler?.message(new Uint8Array(message), isBinary);
        },
        close: (ws: UwsWebSocket, code: number, message: ArrayBuffer) => {
          const data = ws.getUserData();
          if (data.connection) {
            data.connection.closed = true;
            this.open.delete(data.connection);
          }
          data.handler?.close(code, text(message));
        },
      });
    }
    this.app.any('/*', (res, req) => options.http(...adaptHttp(res, req)));
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      // uSockets shares a busy port (SO_REUSEPORT) unless told not to; a second server must be refused, as on ws.
      this.app.listen(host, port, this.sharedPort ? 0 : this.uws.LIBUS_LISTEN_EXCLUSIVE_PORT, (token) => {
        if (!token) return void listenFailure(host, port).then(reject);
        this.token = token;
        resolve(this.uws.us_socket_local_port(token));
      });
    });
  }

  stopListening(): void {
    if (this.token) this.uws.us_listen_socket_close(this.token);
    this.token = undefined;
  }

  get connections(): number {
    return this.open.size;
  }

  async close(code = CLOSE_GOING_AWAY, reason = 'server closing'): Promise<void> {
    this.stopListening();
    for (const connection of this.open) connection.close(code, reason);
    this.open.clear();
  }
}

/**
 * uWS says only "App construction failed": name the files, as the ws transport does (startServer
 * has already named one it cannot read).
 */
function sslApp(uws: UwsModule, tls: { certFile: string; keyFile: string }): UwsApp {
  try {
    return uws.SSLApp({ cert_file_name: tls.certFile, key_file_name: tls.keyFile });
  } catch {
    throw new Error(`TLS certificate ${tls.certFile} and key ${tls.keyFile} do not load (not PEM, or not a pair)`);
  }
}

/** uWS reports a failed listen without a reason: Node's own listen on the same address names it (EADDRINUSE, EACCES, ...). */
function listenFailure(host: string, port: number): Promise<Error> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', resolve);
    probe.listen(port, host, () => probe.close(() => resolve(new Error(`cannot listen on ${host}:${port}`))));
  });
}

function adaptHttp(res: UwsHttpResponse, req: UwsHttpRequest): [HttpRequest, HttpResponse] {
  // Everything from `req` must be read now: it is invalid once this callback returns.
  const headers: Record<string, string> = {};
  req.forEach((key, value) => (headers[key] = value));
  const listeners: Array<() => void> = [];
  let aborted = false;
  let done = false;
  let bodyRead = false;
  let backlog = 0;
  res.onAborted(() => {
    aborted = true;
    for (const listener of listeners) listener();
  });
  const request: HttpRequest = {
    method: req.getMethod().toUpperCase(),
    path: req.getUrl(),
    query: new URLSearchParams(req.getQuery() ?? ''),
    headers,
    remoteAddress: text(res.getRemoteAddressAsText()),
    body: (limit) => {
      if (bodyRead) return Promise.reject(new Error('body already read'));
      bodyRead = true;
      return new Promise<Buffer>((resolve, reject) => {
        if (Number(headers['content-length'] ?? 0) > limit) {
          reject(new EarshotError('too_large', `request body over ${limit} bytes`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        let failed = false;
        listeners.push(() => reject(new Error('client went away')));
        res.onData((chunk, isLast) => {
          if (failed) return;
          size += chunk.byteLength;
          if (size > limit) {
            failed = true;
            reject(new EarshotError('too_large', `request body over ${limit} bytes`));
            return;
          }
          chunks.push(Buffer.from(chunk.slice(0)));
          if (isLast) resolve(Buffer.concat(chunks));
        });
      });
    },
  };
  let head: { status: number; headers: Record<string, string> } | undefined;
  const flushHead = () => {
    if (!head) return;
    res.writeStatus(`${head.status} ${STATUS_TEXT[head.status] ?? ''}`);
    for (const [k, v] of Object.entries(head.headers)) if (k.toLowerCase() !== 'content-length') res.writeHeader(k, v);
    head = undefined;
  };
  const response: HttpResponse = {
    get aborted() {
      return aborted;
    },
    onAbort: (listener) => listeners.push(listener),
    writeHead: (status, h) => {
      head = { status, headers: h };
    },
    write: (chunk) => {
      if (aborted || done) return;
      res.cork(() => {
        flushHead();
        // uWS keeps what the socket did not take and reports it only as `false`; count it until the socket drains.
        if (!res.write(chunk) || backlog > 0) {
          if (backlog === 0) res.onWritable(() => ((backlog = 0), true));
          backlog += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
        }
      });
    },
    end: (chunk) => {
      if (aborted || done) return;
      done = true;
      res.cork(() => {
        flushHead();
        res.end(chunk ?? '');
      });
    },
    get bufferedBytes() {
      return backlog;
    },
    close: () => {
      if (!aborted && !done) res.close();
    },
  };
  return [request, response];
}
