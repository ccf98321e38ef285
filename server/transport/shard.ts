/**
 * One listening shard (a worker thread): its own uWS app on the shared port, owning its
 * sockets. Once a session's stream is attached (native or Realtime), its audio is decoded and segmented here
 * (ShardAudio) and only segment events cross; upgrade decisions, other messages and HTTP
 * requests cross to the main thread, which keeps every limit, session and the one scheduler;
 * what the main thread sends back goes out here.
 * The listen socket must be closed before this thread ends, or uWS aborts the whole process.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { EarshotError } from '../../protocol/errors.js';
import type { ThreadEvent } from '../offload/messages.js';
import { ShardAudio } from './shard-audio.js';
import { CLOSE_SHARD_FAILED, type MainToShard, type ShardData, type ShardToMain } from './shard-messages.js';
import type { Connection, HttpResponse, UpgradeDecision } from './types.js';
import { loadUws, UwsTransport } from './uws.js';

const data = workerData as ShardData;
const port = parentPort!;
const post = (message: ShardToMain) => port.postMessage(message);
const postEvent = (event: ThreadEvent) =>
  event.type === 'speech_stopped' ? port.postMessage({ t: 'stream', event } satisfies ShardToMain, [event.audio.buffer as ArrayBuffer]) : post({ t: 'stream', event });
// Records go to the main thread's logger as lines (no pid, host or time of their own: it adds its own).
const logger = pino({ level: data.logLevel, base: undefined, timestamp: false }, { write: (line: string) => post({ t: 'log', line }) });
const audio = new ShardAudio(
  data.silero,
  data.maxMessageBytes,
  {
    // The view is only valid during the call; postMessage copies it.
    forward: (id, bytes, isBinary, hold) => post({ t: 'message', id, data: bytes, isBinary, hold }),
    event: postEvent,
    heard: ({ ids, frames }) => post({ t: 'heard', ids, frames }),
  },
  logger,
);

const loaded = loadUws();
if (!loaded.module || !loaded.build) throw new Error('no uWebSockets.js build loads in this shard');

let nextId = 1;
const upgrades = new Map<number, (decision: UpgradeDecision) => void>();
const sockets = new Map<number, Connection>();
/** What the main thread sent to an accepted socket before uWS opened it. */
const early = new Map<number, Array<Extract<MainToShard, { t: 'send' | 'close' }>>>();
const requests = new Map<number, { response: HttpResponse; body: Promise<Buffer> | undefined }>();

const transport = new UwsTransport(loaded.module, loaded.build, {
  sharedPort: true,
  maxPayloadBytes: data.maxPayloadBytes,
  maxBufferedBytes: data.maxBufferedBytes,
  closeGraceMs: data.closeGraceMs,
  ...(data.tls ? { tls: data.tls } : {}),
  routes: data.paths.map((path, route) => ({
    path,
    upgrade: (request) =>
      new Promise<UpgradeDecision>((resolve) => {
        const id = nextId++;
        upgrades.set(id, resolve);
        // The main thread opens an accepted socket before it answers, and what it sends on open comes first.
        early.set(id, []);
        post({ t: 'upgrade', id, route, request: { ...request, query: request.query.toString() } });
      }),
  })),
  http: (request, response) => {
    const id = nextId++;
    // uWS wants the body handler attached before this callback returns, and the main thread's
    // limit comes later: read up to the largest body any route takes now, cut to its limit then.
    const body = request.method === 'GET' || request.method === 'HEAD' ? undefined : request.body(data.maxBodyBytes);
    body?.catch(() => undefined);
    requests.set(id, { response, body });
    response.onAbort(() => {
      if (requests.delete(id)) post({ t: 'http-aborted', id });
    });
    post({ t: 'http', id, method: request.method, path: request.path, query: request.query.toString(), headers: request.headers, remoteAddress: request.remoteAddress });
  },
});

/** The accepted upgrade's socket side: messages and the close go to the main thread. */
function accepted(id: number, protocol: string | undefined): UpgradeDecision {
  return {
    accept: true,
    ...(protocol ? { protocol } : {}),
    abandon: () => {
      early.delete(id);
      post({ t: 'abandon', id });
    },
    open: (connection) => {
      sockets.set(id, connection);
      for (const queued of early.get(id) ?? []) deliver(connection, queued);
      early.delete(id);
      return {
        message: (bytes, isBinary) => audio.message(id, bytes, isBinary),
        close: (code, reason) => {
          sockets.delete(id);
          audio.forget(id);
          post({ t: 'closed', id, code, reason });
        },
      };
    },
  };
}

function deliver(connection: Connection, message: Extract<MainToShard, { t: 'send' | 'close' }>): void {
  if (message.t === 'send') connection.send(message.data);
  else connection.close(message.code, message.reason);
}

function respond(id: number, message: MainToShard & { id: number }): void {
  const entry = requests.get(id);
  if (!entry) return;
  const { response } = entry;
  if (message.t === 'head') response.writeHead(message.status, message.headers);
  else if (message.t === 'write') response.write(message.chunk);
  else if (message.t === 'end') {
    requests.delete(id);
    response.end(message.chunk);
    return;
  } else if (message.t === 'drop') {
    // Its abort handler tells the main thread, as a client that left would.
    response.close();
    return;
  }
  post({ t: 'backlog', id, bytes: response.bufferedBytes });
}

async function readBody(id: number, limit: number): Promise<void> {
  const entry = requests.get(id);
  if (!entry) return;
  try {
    const body = await (entry.body ?? Promise.resolve(Buffer.alloc(0)));
    if (body.byteLength > limit) throw new EarshotError('too_large', `request body over ${limit} bytes`);
    post({ t: 'body', id, data: new Uint8Array(body.buffer, body.byteOffset, body.byteLength) });
  } catch (err) {
    post({ t: 'body', id, error: { message: (err as Error).message, tooLarge: err instanceof EarshotError && err.code === 'too_large' } });
  }
}

let stopped = false;
async function stop(code: number, reason: string): Promise<void> {
  if (stopped) return;
  stopped = true;
  await transport.close(code, reason);
  for (const { response } of requests.values()) response.close();
  requests.clear();
  await audio.close();
  post({ t: 'stopped' });
  port.close();
}

port.on('message', (message: MainToShard) => {
  switch (message.t) {
    case 'upgrade': {
      const resolve = upgrades.get(message.id);
      upgrades.delete(message.id);
      if (!message.accept) early.delete(message.id);
      resolve?.(message.accept ? accepted(message.id, message.protocol) : message);
      return;
    }
    case 'send':
    case 'close': {
      const connection = sockets.get(message.id);
      if (connection) deliver(connection, message);
      else early.get(message.id)?.push(message);
      return;
    }
    case 'attach':
      audio.attach(message.id, message.spec);
      post({ t: 'hold', id: message.id });
      return;
    case 'resume':
      audio.resume(message.id);
      return;
    case 'audio':
      audio.push(message.id, message.data);
      return;
    case 'flush':
      audio.flush(message.id);
      return;
    case 'detach':
      audio.detach(message.id);
      return;
    case 'fault':
      if (message.silero !== undefined) return void audio.failSilero(message.silero);
      setImmediate(() => {
        throw new Error('fault injected by a test (ShardedTransport.failShard)');
      });
      return;
    case 'read-body':
      void readBody(message.id, message.limit);
      return;
    case 'stop-listening':
      transport.stopListening();
      return;
    case 'stop':
      void stop(message.code, message.reason);
      return;
    default:
      respond(message.id, message);
  }
});

// A fault here must not end the thread with the listen socket open (uWS would abort the process):
// close every socket with 1011 and let the emptied thread end by itself; process.exit would not
// wait for that. The main thread logs it and starts a replacement.
process.on('uncaughtException', (err) => {
  post({ t: 'failed', message: `shard ${data.index}: ${err.stack ?? err.message}` });
  void stop(CLOSE_SHARD_FAILED, 'server shard failed');
});

transport.listen(data.host, data.port).then(
  () => post({ t: 'listening' }),
  (err: unknown) => {
    post({ t: 'listen-failed', message: (err as Error).message });
    port.close();
  },
);
