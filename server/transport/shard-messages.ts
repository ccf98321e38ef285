/**
 * What crosses between a listening shard (a worker thread with its own uWS app on the shared
 * port) and the main thread, which owns limits, sessions, the scheduler and the engine. Ids are
 * per shard: a websocket or HTTP request is named by (shard, id).
 */
import type { StreamSpec, ThreadEvent } from '../offload/messages.js';
import type { BatchConfirmerOptions } from '../vad/confirmer.js';
import type { TransportOptions, UpgradeRequest } from './types.js';

/** Sockets of a shard that failed close with this (internal error), then the client may reconnect. */
export const CLOSE_SHARD_FAILED = 1011;

export interface ShardData {
  index: number;
  host: string;
  port: number;
  paths: string[];
  maxPayloadBytes: number;
  /** The largest REST body any route reads (--max-body-bytes). */
  maxBodyBytes: number;
  maxBufferedBytes: number;
  closeGraceMs: number;
  tls: TransportOptions['tls'];
  /** The native door's message limit: larger frames cross, and the door refuses them. */
  maxMessageBytes: number;
  /** Each shard's own Silero confirmer for the streams it decodes (none with --vad webrtc). */
  silero: BatchConfirmerOptions | undefined;
  /** The main thread's log level: what the shard logs (its Silero thread's failures) goes there. */
  logLevel: string;
}

export type ShardToMain =
  | { t: 'listening' }
  | { t: 'listen-failed'; message: string }
  /** An uncaught fault: the shard closes its sockets (1011) and ends. */
  | { t: 'failed'; message: string }
  /** URLSearchParams does not cross threads: the query goes as its string. */
  | { t: 'upgrade'; id: number; route: number; request: Omit<UpgradeRequest, 'query'> & { query: string } }
  /** The client went away between an accepted upgrade and its open. */
  | { t: 'abandon'; id: number }
  /** `hold`: the socket's audio waits in the shard until the main thread answers `resume` (see shard-audio.ts). */
  | { t: 'message'; id: number; data: Uint8Array; isBinary: boolean; hold: boolean }
  /** An attached stream's audio waits until the main thread answers `resume`. */
  | { t: 'hold'; id: number }
  /** What a stream decoded in the shard heard (event.stream is the socket's id). */
  | { t: 'stream'; event: ThreadEvent }
  /** Sockets whose audio the shard decoded since the last report, and how many frames each. */
  | { t: 'heard'; ids: number[]; frames: number[] }
  | { t: 'closed'; id: number; code: number; reason: string }
  | { t: 'http'; id: number; method: string; path: string; query: string; headers: Record<string, string>; remoteAddress: string }
  | { t: 'body'; id: number; data?: Uint8Array; error?: { message: string; tooLarge: boolean } }
  | { t: 'http-aborted'; id: number }
  | { t: 'backlog'; id: number; bytes: number }
  /** One log record (pino's JSON line), logged by the main thread's logger. */
  | { t: 'log'; line: string }
  | { t: 'stopped' };

export type MainToShard =
  | { t: 'upgrade'; id: number; accept: false; status: number; body: string; headers?: Record<string, string> }
  | { t: 'upgrade'; id: number; accept: true; protocol?: string }
  | { t: 'send'; id: number; data: Uint8Array | string }
  | { t: 'close'; id: number; code: number; reason: string }
  /** Decode and segment this socket's audio in the shard from now on. */
  | { t: 'attach'; id: number; spec: StreamSpec }
  | { t: 'resume'; id: number }
  /** Audio the main thread got before the attach, sent back in order. */
  | { t: 'audio'; id: number; data: Uint8Array }
  | { t: 'flush'; id: number }
  | { t: 'detach'; id: number }
  /** Tests only (ShardedTransport.failShard): the shard throws, as a bug in it would; with `silero`, its Silero thread's next call fails instead. */
  | { t: 'fault'; silero?: string }
  | { t: 'read-body'; id: number; limit: number }
  | { t: 'head'; id: number; status: number; headers: Record<string, string> }
  | { t: 'write'; id: number; chunk: Uint8Array | string }
  | { t: 'end'; id: number; chunk?: Uint8Array | string }
  | { t: 'drop'; id: number }
  | { t: 'stop-listening' }
  /** Close every socket with this code and the listen socket, then say 'stopped'. */
  | { t: 'stop'; code: number; reason: string };
