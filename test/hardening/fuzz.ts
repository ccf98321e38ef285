/**
 * Seeded fuzzing of the three front doors. Each input is sent, then a websocket ping:
 * the server answers a message before it handles the next frame, so whatever arrives
 * before the pong belongs to that input. The oracle is the protocol's own parser: an
 * input it rejects must get an error; an input it accepts may start work (documented
 * behaviour, checked only for not crashing).
 */
import fc from 'fast-check';
import { Encoder } from '@msgpack/msgpack';
import WebSocket from 'ws';
import { decodeClientMessage, decodeServerMessage, isRawAudio } from '../../protocol/codec.js';
import { parseClientEvent } from '../../protocol/realtime.js';
import type { RunningServer } from '../../server/app.js';

export interface FuzzOptions {
  runs: number;
  seed: number;
}

export interface FuzzReport {
  door: string;
  inputs: number;
  errors: number;
  accepted: number;
  reconnects: number;
  /** Inputs the oracle rejects that got no error, or HTTP answers outside the documented set. */
  violations: string[];
}

type Input = { bytes: Uint8Array; text: false } | { bytes: string; text: true };

const encoder = new Encoder({ useBigInt64: true });
const encode = (value: unknown) => encoder.encode(value);
const hex = (input: Input) => (input.text ? JSON.stringify(input.bytes.slice(0, 200)) : Buffer.from(input.bytes.subarray(0, 100)).toString('hex'));

const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ maxLength: 24 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.uint8Array({ maxLength: 64 }),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.array(fc.integer(), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.integer(), { maxKeys: 3 }),
);
const hugeNumber = fc.oneof(fc.constantFrom(Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, 1e308, -1e308, Infinity, -Infinity, NaN, -0, 2 ** 32, -1), fc.double());

const validNative = fc.oneof(
  fc.constant({ type: 'commit' }),
  fc.constant({ type: 'cancel' }),
  fc.string({ minLength: 1, maxLength: 40 }).map((text) => ({ type: 'text', text })),
  fc.constant({ type: 'hello', codec: 'pcm16', sampleRate: 16000 }),
  fc.uint8Array({ maxLength: 320 }).map((data) => ({ type: 'audio', seq: 1, data })),
);

const nativeInput: fc.Arbitrary<Input> = fc.oneof(
  { arbitrary: fc.uint8Array({ maxLength: 256 }), weight: 3 },
  // Raw audio frames: odd-length PCM and corrupt Opus packets.
  { arbitrary: fc.uint8Array({ maxLength: 400 }).map((b) => Uint8Array.of(0, ...b)), weight: 3 },
  // Truncated msgpack.
  { arbitrary: fc.tuple(validNative, fc.nat()).map(([m, n]) => { const b = encode(m); return b.subarray(0, n % b.length); }), weight: 2 },
  // Known and unknown types with fields of the wrong type.
  {
    arbitrary: fc
      .tuple(
        fc.constantFrom('hello', 'audio', 'commit', 'text', 'cancel', 'shout', '', 'HELLO'),
        fc.dictionary(fc.constantFrom('codec', 'sampleRate', 'data', 'text', 'seq', 'vad', 'params', 'token', 'version', 'channels', 'system'), anyValue, { maxKeys: 4 }),
      )
      .map(([type, fields]) => encode({ type, ...fields })),
    weight: 4,
  },
  // Huge and non-finite numbers where numbers belong.
  {
    arbitrary: fc.oneof(
      hugeNumber.map((seq) => encode({ type: 'audio', seq, data: new Uint8Array(4) })),
      fc.tuple(hugeNumber, hugeNumber).map(([maxTokens, temperature]) => encode({ type: 'hello', codec: 'pcm16', sampleRate: 16000, params: { maxTokens, temperature } })),
      hugeNumber.map((sampleRate) => encode({ type: 'hello', codec: 'opus', sampleRate })),
    ),
    weight: 2,
  },
  // msgpack that is not a map, and deep nesting.
  { arbitrary: anyValue.map((v) => encode(v)), weight: 2 },
  { arbitrary: fc.integer({ min: 1, max: 4000 }).map((n) => Uint8Array.from([...new Array<number>(n).fill(0x91), 0xc0])), weight: 1 },
  // Valid messages in any order (hello twice, commit before hello, ...).
  { arbitrary: validNative.map((m) => encode(m)), weight: 3 },
  { arbitrary: fc.constant(encode({ type: 'bye' })), weight: 1 },
).map((bytes) => ({ bytes, text: false as const }));

const nativeText: fc.Arbitrary<Input> = fc.string({ maxLength: 64 }).map((s) => ({ bytes: s, text: true as const }));

function realtimeEvent(type: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc
    .tuple(type, fc.dictionary(fc.constantFrom('event_id', 'session', 'audio', 'item', 'item_id', 'response', 'response_id', 'content_index', 'audio_end_ms', 'previous_item_id'), anyValue, { maxKeys: 3 }))
    .map(([t, fields]) => JSON.stringify({ type: t, ...fields }, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v instanceof Uint8Array ? Array.from(v) : v)));
}

const REALTIME_TYPES = [
  'session.update', 'input_audio_buffer.append', 'input_audio_buffer.commit', 'input_audio_buffer.clear', 'conversation.item.create',
  'conversation.item.delete', 'conversation.item.retrieve', 'conversation.item.truncate', 'response.create', 'response.cancel', 'nope',
];

const realtimeInput: fc.Arbitrary<Input> = fc.oneof(
  { arbitrary: fc.string({ maxLength: 128 }).map((bytes) => ({ bytes, text: true as const })), weight: 2 },
  { arbitrary: fc.uint8Array({ maxLength: 64 }).map((bytes) => ({ bytes, text: false as const })), weight: 1 },
  { arbitrary: realtimeEvent(fc.constantFrom(...REALTIME_TYPES)).map((bytes) => ({ bytes, text: true as const })), weight: 5 },
  // Bad base64 and odd-length audio.
  {
    arbitrary: fc.oneof(fc.string({ maxLength: 64 }), fc.base64String({ maxLength: 64 })).map((audio) => ({ bytes: JSON.stringify({ type: 'input_audio_buffer.append', audio }), text: true as const })),
    weight: 3,
  },
  { arbitrary: fc.tuple(realtimeEvent(fc.constantFrom(...REALTIME_TYPES)), fc.nat()).map(([s, n]) => ({ bytes: s.slice(0, n % s.length), text: true as const })), weight: 2 },
  {
    arbitrary: fc.constantFrom('{"type":"response.create"}', '{"type":"response.cancel"}', '{"type":"input_audio_buffer.commit"}', '{"type":"input_audio_buffer.clear"}').map((bytes) => ({ bytes, text: true as const })),
    weight: 2,
  },
);

/** One fuzzing client: reconnects after a fatal error, attributes replies to inputs by ping/pong. */
class Prober {
  private socket: WebSocket | undefined;
  private replies: unknown[] = [];
  private settle: (() => void) | undefined;
  reconnects = -1;

  constructor(
    private readonly url: string,
    private readonly decode: (data: Buffer, isBinary: boolean) => unknown,
    private readonly greet: (socket: WebSocket, firstMessage: Promise<void>) => Promise<void>,
  ) {}

  async send(input: Input): Promise<unknown[] | 'closed'> {
    const socket = await this.ensure();
    this.replies = [];
    const settled = new Promise<void>((resolve) => (this.settle = resolve));
    socket.send(input.bytes, { binary: !input.text });
    socket.ping();
    await settled;
    if (socket.readyState !== WebSocket.OPEN) {
      this.socket = undefined;
      return this.replies.length > 0 ? this.replies : 'closed';
    }
    return this.replies;
  }

  async close(): Promise<void> {
    const socket = this.socket;
    if (!socket) return;
    this.socket = undefined;
    const gone = new Promise((resolve) => socket.once('close', resolve));
    socket.close();
    await gone;
  }

  private async ensure(): Promise<WebSocket> {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) return this.socket;
    this.reconnects++;
    const socket = new WebSocket(this.url);
    // A server may greet in the same packet as the handshake: listen before 'open'.
    const first = new Promise<void>((resolve) => socket.once('message', () => resolve()));
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    socket.on('message', (data: Buffer, isBinary: boolean) => this.replies.push(this.decode(data, isBinary)));
    socket.on('pong', () => this.settle?.());
    socket.on('close', () => this.settle?.());
    await this.greet(socket, first);
    this.socket = socket;
    return socket;
  }
}

function isError(reply: unknown): boolean {
  return typeof reply === 'object' && reply !== null && (reply as { type?: unknown }).type === 'error';
}

async function runProbers(door: string, probers: Prober[], inputs: Input[], mustFail: (input: Input) => boolean): Promise<FuzzReport> {
  const report: FuzzReport = { door, inputs: 0, errors: 0, accepted: 0, reconnects: 0, violations: [] };
  let next = 0;
  await Promise.all(
    probers.map(async (prober) => {
      while (next < inputs.length) {
        const index = next++;
        const input = inputs[index]!;
        const replies = await prober.send(input);
        report.inputs++;
        const gotError = replies === 'closed' || replies.some(isError);
        if (gotError) report.errors++;
        else report.accepted++;
        if (!gotError && mustFail(input) && report.violations.length < 20) report.violations.push(`#${index} ${hex(input)}: no error`);
      }
      await prober.close();
      report.reconnects += prober.reconnects;
    }),
  );
  return report;
}

/** Spreads `runs` over chunks so 100k inputs never sit in memory at once. */
async function inChunks(runs: number, seed: number, arbitrary: fc.Arbitrary<Input>, run: (inputs: Input[]) => Promise<FuzzReport>): Promise<FuzzReport> {
  let total: FuzzReport | undefined;
  for (let done = 0, chunk = 0; done < runs; chunk++) {
    const size = Math.min(10_000, runs - done);
    const report = await run(fc.sample(arbitrary, { seed: seed + chunk, numRuns: size }));
    total = total
      ? { ...total, inputs: total.inputs + report.inputs, errors: total.errors + report.errors, accepted: total.accepted + report.accepted, reconnects: total.reconnects + report.reconnects, violations: [...total.violations, ...report.violations] }
      : report;
    done += size;
  }
  return total!;
}

/** `codec` is what the probers greet with: 'opus' sends the raw frames through the Opus decoder. */
export function fuzzNative(server: RunningServer, { runs, seed }: FuzzOptions, codec: 'pcm16' | 'opus' = 'pcm16', connections = 4): Promise<FuzzReport> {
  const arbitrary = fc.oneof({ arbitrary: nativeInput, weight: 19 }, { arbitrary: nativeText, weight: 1 });
  const decode = (data: Buffer) => decodeServerMessage(data);
  const greet = async (socket: WebSocket, ready: Promise<void>) => {
    socket.send(encode({ type: 'hello', codec, sampleRate: 16000, vad: { enabled: false } }));
    await ready;
  };
  const mustFail = (input: Input) => {
    if (input.text) return true;
    try {
      if (!isRawAudio(input.bytes)) decodeClientMessage(input.bytes);
      return false;
    } catch {
      return true;
    }
  };
  return inChunks(runs, seed, arbitrary, (inputs) =>
    runProbers(`native /v1/stream (${codec})`, Array.from({ length: connections }, () => new Prober(`${server.wsUrl}/v1/stream`, decode, greet)), inputs, mustFail),
  );
}

export function fuzzRealtime(server: RunningServer, { runs, seed }: FuzzOptions, connections = 4): Promise<FuzzReport> {
  const decode = (data: Buffer) => JSON.parse(data.toString()) as unknown;
  const greet = (_socket: WebSocket, created: Promise<void>) => created;
  const mustFail = (input: Input) => !input.text || !parseClientEvent(input.bytes).ok;
  return inChunks(runs, seed, realtimeInput, (inputs) =>
    runProbers('realtime /v1/realtime', Array.from({ length: connections }, () => new Prober(`${server.wsUrl}/v1/realtime`, decode, greet)), inputs, mustFail),
  );
}

const WAV_HEADER = Buffer.from('UklGRiQAAABXQVZFZm10IBAAAAABAAEAgD4AAAB9AAACABAAZGF0YQAAAAA=', 'base64');

const restBody: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 200 }),
  anyValue.map((v) => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? Number(x) : x instanceof Uint8Array ? Array.from(x) : x)) ?? 'null'),
  fc
    .tuple(
      fc.oneof(fc.constant('earshot-echo-test-engine'), anyValue),
      fc.oneof(anyValue, fc.array(fc.record({ role: fc.constantFrom('user', 'system', 'assistant', 'tool', 'x'), content: anyValue }), { maxLength: 3 })),
      fc.dictionary(fc.constantFrom('max_tokens', 'temperature', 'top_p', 'stream', 'stop', 'n', 'modalities'), fc.oneof(anyValue, hugeNumber), { maxKeys: 3 }),
    )
    .map(([model, messages, extra]) => JSON.stringify({ model, messages, ...extra }, (_k, x: unknown) => (typeof x === 'bigint' ? Number(x) : x instanceof Uint8Array ? Array.from(x) : x))),
  // input_audio with bad base64, corrupt WAV/MP3 headers and wrong formats.
  fc
    .tuple(
      fc.oneof(fc.string({ maxLength: 40 }), fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('base64')), fc.uint8Array({ maxLength: 32 }).map((b) => Buffer.concat([WAV_HEADER.subarray(0, 36), b]).toString('base64')), fc.uint8Array({ maxLength: 32 }).map((b) => Buffer.concat([Buffer.from([0xff, 0xfb, 0x90, 0x64]), b]).toString('base64'))),
      fc.constantFrom('wav', 'mp3', 'pcm16', 'ogg', ''),
    )
    .map(([data, format]) => JSON.stringify({ model: 'earshot-echo-test-engine', messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data, format } }] }] })),
);

interface RestBody {
  body: string | Uint8Array;
  contentType: string;
}

const BOUNDARY = 'earshot-fuzz-boundary';

function multipart(fields: [name: string, value: string | Uint8Array, filename?: string][]): Buffer {
  const chunks: Buffer[] = [];
  for (const [name, value, filename] of fields) {
    const disposition = `form-data; name="${name}"${filename ? `; filename="${filename}"` : ''}`;
    chunks.push(Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: ${disposition}\r\n${filename ? 'Content-Type: application/octet-stream\r\n' : ''}\r\n`), Buffer.from(value), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(chunks);
}

// Multipart uploads: random, truncated-WAV and MP3-looking files, odd fields, cut bodies, wrong content types.
const transcriptionBody: fc.Arbitrary<RestBody> = fc
  .tuple(
    fc.oneof(fc.constant('earshot-echo-test-engine'), fc.string({ maxLength: 20 })),
    fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.concat([WAV_HEADER, b])), fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.concat([Buffer.from([0xff, 0xfb, 0x90, 0x64]), b]))),
    fc.constantFrom('json', 'text', 'verbose_json', 'srt', 'x'),
    fc.boolean(),
    fc.nat(),
    fc.constantFrom(`multipart/form-data; boundary=${BOUNDARY}`, 'multipart/form-data', 'application/json', `multipart/form-data; boundary=other`),
  )
  .map(([model, file, format, withFile, cut, contentType]) => {
    const body = multipart([['model', model], ['response_format', format], ...(withFile ? [['file', file, 'audio.wav'] as [string, Uint8Array, string]] : [])]);
    return { body: cut % 4 === 0 ? body.subarray(0, cut % body.length) : body, contentType };
  });

const TARGETS = {
  chat: { path: '/v1/chat/completions', bodies: restBody.map((body): RestBody => ({ body, contentType: 'application/json' })) },
  transcriptions: { path: '/v1/audio/transcriptions', bodies: transcriptionBody },
};

/** Every answer must be 200 or a 4xx OpenAI error JSON; a 5xx or a bare body is a violation. */
export async function fuzzRest(server: RunningServer, { runs, seed }: FuzzOptions, target: keyof typeof TARGETS = 'chat', concurrency = 8): Promise<FuzzReport> {
  const { path, bodies: arbitrary } = TARGETS[target];
  const report: FuzzReport = { door: `REST ${path}`, inputs: 0, errors: 0, accepted: 0, reconnects: 0, violations: [] };
  for (let done = 0, chunk = 0; done < runs; chunk++) {
    const size = Math.min(10_000, runs - done);
    const bodies = fc.sample(arbitrary, { seed: seed + chunk, numRuns: size });
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < bodies.length) {
          const index = next++;
          const { body, contentType } = bodies[index]!;
          const res = await fetch(`${server.url}${path}`, { method: 'POST', body: typeof body === 'string' ? body : new Uint8Array(body), headers: { 'content-type': contentType } });
          const text = await res.text();
          report.inputs++;
          if (res.status === 200) report.accepted++;
          else {
            report.errors++;
            let shaped = false;
            try {
              const parsed = JSON.parse(text) as { error?: { message?: unknown; type?: unknown } };
              shaped = typeof parsed.error?.message === 'string' && typeof parsed.error.type === 'string';
            } catch {}
            if ((res.status >= 500 || !shaped) && report.violations.length < 20)
              report.violations.push(`#${index} ${JSON.stringify(Buffer.from(body).toString('latin1').slice(0, 200))}: ${res.status} ${text.slice(0, 200)}`);
          }
        }
      }),
    );
    done += size;
  }
  return report;
}
