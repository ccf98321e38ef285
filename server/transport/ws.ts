/** The `ws` package on node:http(s): the portable fallback transport. */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { EarshotError } from '../../protocol/errors.js';
import { CLOSE_SLOW_READER, STATUS_TEXT, type Connection, type HttpRequest, type HttpResponse, type SocketHandler, type Transport, type TransportOptions } from './types.js';


class WsConnection implements Connection {
  readonly remoteAddress: string;
  private readonly socket: WebSocket;
  private readonly maxBuffered: number;
  private readonly closeGraceMs: number;
  /** Tells the connection's handler, once, that the connection is over. */
  private readonly ended: (code: number, reason: string) => void;

  constructor(socket: WebSocket, remoteAddress: string, maxBuffered: number, closeGraceMs: number, ended: (code: number, reason: string) => void) {
    this.socket = socket;
    this.remoteAddress = remoteAddress;
    this.maxBuffered = maxBuffered;
    this.closeGraceMs = closeGraceMs;
    this.ended = ended;
  }

  get closed(): boolean {
    return this.socket.readyState !== this.socket.OPEN;
  }

  send(data: Uint8Array | string): boolean {
    if (this.closed) return false;
    if (this.socket.bufferedAmount > this.maxBuffered) {
      this.close(CLOSE_SLOW_READER, 'client is not reading');
      return false;
    }
    this.socket.send(data, { binary: typeof data !== 'string' });
    return true;
  }

  close(code: number, reason: string): void {
    if (this.socket.readyState !== this.socket.OPEN && this.socket.readyState !== this.socket.CONNECTING) return;
    this.socket.close(code, reason);
    // ws waits up to 30 s for the peer's close frame; a peer that stopped reading never sends it.
    setTimeout(() => this.socket.terminate(), this.closeGraceMs).unref();
    // The server ended it: the session stops now (as uWS's end() does), not when the peer answers,
    // or a slow reader's reply would go on being made and dropped for the whole grace.
    this.ended(code, reason);
  }
}

function lowerHeaders(raw: http.IncomingHttpHeaders): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  return headers;
}

function adaptRequest(req: http.IncomingMessage, url: URL): HttpRequest {
  return {
    method: req.method ?? 'GET',
    path: url.pathname,
    query: url.searchParams,
    headers: lowerHeaders(req.headers),
    remoteAddress: req.socket.remoteAddress ?? '',
    body: (limit) =>
      new Promise<Buffer>((resolve, reject) => {
        const declared = Number(req.headers['content-length'] ?? 0);
        if (declared > limit) {
          reject(new EarshotError('too_large', `request body over ${limit} bytes`));
          req.resume();
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        req.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > limit) {
            reject(new EarshotError('too_large', `request body over ${limit} bytes`));
            req.removeAllListeners('data');
            req.resume();
            return;
          }
          chunks.push(chunk);
        });
        req.on('end', () => resolve(Buffer.concat(chunks)));
        req.on('error', reject);
      }),
  };
}

function adaptResponse(res: http.ServerResponse): HttpResponse {
  let aborted = false;
  const listeners: Array<() => void> = [];
  res.on('close', () => {
    if (res.writableFinished) return;
    aborted = true;
    for (const listener of listeners) listener();
  });
  return {
    get aborted() {
      return aborted;
    },
    onAbort: (listener) => listeners.push(listener),
    writeHead: (status, headers) => {
      if (!aborted) res.writeHead(status, headers);
    },
    write: (chunk) => {
      if (!aborted) res.write(chunk);
    },
    end: (chunk) => {
      if (!aborted) res.end(chunk);
    },
    get bufferedBytes() {
      return res.writableLength;
    },
    close: () => res.destroy(),
  };
}

export class WsTransport implements Transport {
  readonly name = 'ws';
  private readonly server: http.Server;
  private readonly wss: WebSocketServer;
  private readonly options: TransportOptions;
  private readonly sockets = new Set<Socket>();

  constructor(options: TransportOptions) {
    this.options = options;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      options.http(adaptRequest(req, url), adaptResponse(res));
    };
    this.server = options.tls
      ? https.createServer({ cert: readFileSync(options.tls.certFile), key: readFileSync(options.tls.keyFile) }, handler)
      : http.createServer(handler);
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.maxPayloadBytes,
      perMessageDeflate: false,
      handleProtocols: (_protocols, request) => (request as http.IncomingMessage & { earshotProtocol?: string }).earshotProtocol ?? false,
    });
    this.server.on('upgrade', (req: http.IncomingMessage & { earshotProtocol?: string }, socket: Socket, head: Buffer) => this.upgrade(req, socket, head));
  }

  private upgrade(req: http.IncomingMessage & { earshotProtocol?: string }, socket: Socket, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = this.options.routes.find((r) => r.path === url.pathname);
    const reject = (status: number, body: string, headers: Record<string, string> = {}) => {
      const lines = [`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}`, 'Connection: close', 'Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`];
      for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
      socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
    };
    if (!route) return reject(404, JSON.stringify({ error: { code: 'not_found', message: `no websocket endpoint at ${url.pathname}` } }));
    const protocols = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter(Boolean);
    const remoteAddress = req.socket.remoteAddress ?? '';
    const decision = route.upgrade({ path: url.pathname, query: url.searchParams, headers: lowerHeaders(req.headers), protocols, remoteAddress });
    if (!decision.accept) return reject(decision.status, decision.body, decision.headers);
    if (decision.protocol) req.earshotProtocol = decision.protocol;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      // The handler hears of the end once: when the server closes the connection or when the socket closes.
      let handler: SocketHandler | undefined;
      let ended: [code: number, reason: string] | undefined;
      const end = (code: number, reason: string) => {
        if (ended) return;
        ended = [code, reason];
        handler?.close(code, reason);
      };
      const connection = new WsConnection(ws, remoteAddress, this.options.maxBufferedBytes, this.options.closeGraceMs, end);
      const opened = decision.open(connection);
      handler = opened;
      if (ended) opened.close(...ended);
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (!ended) opened.message(data, isBinary);
      });
      ws.on('close', (code: number, reason: Buffer) => end(code, reason.toString()));
      ws.on('error', () => ws.terminate());
    });
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve((this.server.address() as AddressInfo).port));
    });
  }

  stopListening(): void {
    this.server.close();
  }

  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
