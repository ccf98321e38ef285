/**
 * What a front door needs from the network: websocket routes with an upgrade decision, and plain
 * HTTP. uWebSockets.js and the `ws` package both implement it; a listening shard also offers to
 * decode a connection's audio where its socket lives (Connection.audio).
 */
import type { AudioHost } from '../offload/host.js';

/** Both transports close a client that stops reading past maxBufferedBytes with this code (policy violation). */
export const CLOSE_SLOW_READER = 1008;

export interface Connection {
  readonly remoteAddress: string;
  /** Sends one message; false once the peer is over the buffered limit (the connection is then being closed). */
  send(data: Uint8Array | string): boolean;
  close(code: number, reason: string): void;
  readonly closed: boolean;
  /** Set on a listening shard's connections: the socket's audio can be decoded and segmented on its shard. */
  readonly audio?: AudioHost;
}

export interface SocketHandler {
  /** `data` is only valid during the call: copy what outlives it. */
  message(data: Uint8Array, isBinary: boolean): void;
  close(code: number, reason: string): void;
  /** The socket's shard decoded `frames` audio frames of it itself (Connection.audio): activity, and frames to count. */
  heard?(frames: number): void;
}

export interface UpgradeRequest {
  path: string;
  query: URLSearchParams;
  /** Lower-case names. */
  headers: Record<string, string>;
  protocols: string[];
  remoteAddress: string;
}

export type UpgradeDecision =
  | { accept: false; status: number; body: string; headers?: Record<string, string> }
  | {
      accept: true;
      protocol?: string;
      open: (connection: Connection) => SocketHandler;
      /** Called instead of `open` when the client left before a late (cross-thread) answer arrived. */
      abandon?: () => void;
    };

export interface WebSocketRoute {
  path: string;
  upgrade(request: UpgradeRequest): UpgradeDecision;
}

export interface HttpRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: Record<string, string>;
  readonly remoteAddress: string;
  /** Reads the whole body; rejects with EarshotError('too_large') past `limit` bytes. */
  body(limit: number): Promise<Buffer>;
}

export interface HttpResponse {
  /** True once the client went away; writes are then ignored. */
  readonly aborted: boolean;
  onAbort(listener: () => void): void;
  writeHead(status: number, headers: Record<string, string>): void;
  write(chunk: string | Uint8Array): void;
  end(chunk?: string | Uint8Array): void;
  /** Bytes written but not yet taken by the client's socket: a stalled reader makes this grow. */
  readonly bufferedBytes: number;
  /** Drops the connection at once (for a client that stopped reading); onAbort listeners run. */
  close(): void;
}

export type HttpHandler = (request: HttpRequest, response: HttpResponse) => void;

export interface TransportOptions {
  routes: WebSocketRoute[];
  http: HttpHandler;
  /** Hard cap on one websocket message; front doors enforce their own (smaller) limit with a proper error. */
  maxPayloadBytes: number;
  maxBufferedBytes: number;
  /** How long a closed websocket may take to read its close frame before the socket is dropped. */
  closeGraceMs: number;
  tls?: { certFile: string; keyFile: string };
}

export interface Transport {
  readonly name: string;
  listen(host: string, port: number): Promise<number>;
  /** Stops accepting; open sockets are left to their owners (graceful drain). */
  stopListening(): void;
  close(): Promise<void>;
  /** Open websockets per listening shard, when there is more than one. */
  shardConnections?(): number[];
}

export const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 204: 'No Content', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  408: 'Request Timeout', 413: 'Payload Too Large', 426: 'Upgrade Required', 429: 'Too Many Requests', 500: 'Internal Server Error',
  502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};
