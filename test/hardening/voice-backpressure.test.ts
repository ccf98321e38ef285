/**
 * A client that asks for a voice and stops reading while the reply's audio streams is treated
 * like any slow reader: the server buffers up to --max-buffered-bytes for it, then closes it
 * with 1008 and stops synthesising its reply, on the native door and the Realtime door, over
 * both transports, while another session on the same server is answered in full.
 *
 * Memory is judged by what was made, not by heap deltas (whole-process memory moves by ±15 MiB
 * between collections): the reply is long (minutes of speech, megabytes at 48 kHz), and the
 * server synthesises only a part of it before closing the reader; nothing more is made after
 * the close, so nothing can pile up.
 */
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { decodeServerMessage, encodeClientMessage } from '../../protocol/codec.js';
import type { ServerMessage } from '../../protocol/native.js';
import { EchoEngine } from '../../server/engines/echo/engine.js';
import type { Engine, TurnEvent, TurnRequest } from '../../server/engines/types.js';
import { createLogger } from '../../server/observability/log.js';
import { FliteTts } from '../../server/voice/flite/engine.js';
import type { Pcm24k, SpeakOptions, Tts, VoiceInfo } from '../../server/voice/types.js';
import { TestClient } from '../helpers/native-client.js';
import type { RunningServer } from '../../server/app.js';
import { startTestServer, TRANSPORTS } from '../helpers/server.js';

const KiB = 1024;
const SENTENCE = 'Sentence after sentence, the voice goes on and on without a pause.';
/** The long reply: about 2.5 minutes of speech, 14 MiB as 48 kHz PCM16 and more as base64. */
const SENTENCES = 60;
const LONG = 'Please talk for a long time.';

/** Answers LONG with SENTENCES sentences (the text is small, its speech is not); anything else as the echo engine. */
class LongReplyEngine extends EchoEngine {
  override async run(batch: TurnRequest[], emit: (turnId: string, event: TurnEvent) => void): Promise<void> {
    await Promise.all(batch.map((turn) => (isLong(turn) ? this.talk(turn, emit) : super.run([turn], emit))));
  }

  private async talk(turn: TurnRequest, emit: (turnId: string, event: TurnEvent) => void): Promise<void> {
    let sent = 0;
    for (; sent < SENTENCES && !turn.signal.aborted; sent++) {
      emit(turn.id, { type: 'delta', text: `${SENTENCE} ` });
      await sleep(1);
    }
    emit(turn.id, { type: 'done', usage: { promptTokens: 1, completionTokens: sent }, finish: turn.signal.aborted ? 'cancelled' : 'stop' });
  }
}

function isLong(turn: TurnRequest): boolean {
  const last = turn.messages.at(-1)?.parts.find((p) => p.type === 'text');
  return last?.type === 'text' && last.text === LONG;
}

/** The embedded Flite engine, counting the samples it speaks per voice. */
class CountingTts implements Tts {
  readonly name = 'flite';
  readonly spoken = new Map<string, number>();
  private readonly inner = new FliteTts({ threads: 2, maxQueue: 512 }, createLogger('silent'));

  voices(): VoiceInfo[] {
    return this.inner.voices();
  }

  async *speak(text: string, voice: string, signal: AbortSignal, options?: SpeakOptions): AsyncIterable<Pcm24k> {
    for await (const pcm of this.inner.speak(text, voice, signal, options)) {
      this.spoken.set(voice, (this.spoken.get(voice) ?? 0) + pcm.length);
      yield pcm;
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** A websocket whose TCP socket can stop being read; counts what arrives and how it closes. */
class StalledReader {
  readonly messages: Buffer[] = [];
  readonly closed: Promise<number>;
  private readonly socket: WebSocket;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on('message', (data: Buffer) => this.messages.push(data));
    this.closed = new Promise((resolve) => socket.once('close', (code) => resolve(code)));
  }

  static async open(url: string): Promise<StalledReader> {
    const socket = new WebSocket(url);
    const reader = new StalledReader(socket);
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    return reader;
  }

  send(data: Uint8Array | string): void {
    this.socket.send(data);
  }

  /** Resolves with the first message from `from` on that `match` accepts. */
  async next<T>(decode: (data: Buffer) => T, match: (m: T) => boolean, from = 0): Promise<T> {
    for (;;) {
      const found = this.messages.slice(from).map(decode).find(match);
      if (found) return found;
      await new Promise((resolve) => this.socket.once('message', resolve));
    }
  }

  private get raw(): Socket {
    return (this.socket as unknown as { _socket: Socket })._socket;
  }

  pause(): void {
    this.raw.pause();
  }

  resume(): void {
    this.raw.resume();
  }
}

const json = (data: Buffer) => JSON.parse(data.toString()) as { type: string; [key: string]: any };

/** Open sessions of one front door, from /metrics. */
async function openSessions(server: RunningServer, door: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`earshot_sessions{door="${door}"}`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

/** Samples of the whole long reply in `voice`, from one sentence: what the server would make if it never stopped. */
async function wholeReply(tts: Tts, voice: string): Promise<number> {
  let samples = 0;
  for await (const pcm of tts.speak(SENTENCE, voice, new AbortController().signal)) samples += pcm.length;
  return SENTENCES * samples;
}

for (const transport of TRANSPORTS) {
  t.test(`a voice client that stops reading is closed with 1008 and its speech stops, native and Realtime, over ${transport}`, async (t) => {
    const tts = new CountingTts();
    const whole = { awb: await wholeReply(tts, 'awb'), rms: await wholeReply(tts, 'rms') };
    tts.spoken.clear();
    // 1 MiB: a Realtime delta carries a whole synthesised piece (up to ~450 KiB of base64 at 48 kHz), and
    // uWS drops a socket outright (no close frame) when one message takes it past twice the limit.
    const config = { transport, maxBufferedBytes: 1024 * KiB, idleTimeoutMs: 0, closeGraceMs: 60_000 };
    // The server owns the TTS engine from here (and closes it).
    const server = await startTestServer(config, { engine: new LongReplyEngine({ tokenDelayMs: 0, capacity: 4 }) as Engine, tts });
    t.teardown(() => server.close(0));

    // Another session on the same server, answered in full while the stalled ones are flooded.
    const other = await TestClient.connect(`${server.wsUrl}/v1/stream`);
    t.teardown(() => other.close());
    await other.hello({ codec: 'pcm16', sampleRate: 16000, voice: { codec: 'pcm16', name: 'slt' } });
    // Native: 48 kHz PCM16 frames in the awb voice.
    const native = await StalledReader.open(`${server.wsUrl}/v1/stream`);
    native.send(encodeClientMessage({ type: 'hello', codec: 'pcm16', sampleRate: 16000, voice: { codec: 'pcm16', sampleRate: 48000, name: 'awb' } }));
    await native.next(decodeServerMessage, (m) => m.type === 'ready');
    // Realtime: 48 kHz PCM16 deltas (base64) in the rms voice.
    const realtime = await StalledReader.open(`${server.wsUrl}/v1/realtime?model=x`);
    realtime.send(JSON.stringify({ type: 'session.update', session: { type: 'realtime', audio: { output: { voice: 'rms', format: { type: 'audio/pcm', rate: 48000 } } } } }));
    await realtime.next(json, (e) => e.type === 'session.updated');
    t.same([await openSessions(server, 'native'), await openSessions(server, 'realtime')], [2, 1]);

    /**
     * The server gives up on a stalled reader: its session closes. The reader reads again at that
     * very moment (the test watches the sessions gauge go down, in-process): its close frame waits
     * behind what the kernel holds, and uWS drops a socket that stays unread after closing it.
     */
    const gauge = server.ctx.metrics.sessions;
    const decrement = gauge.dec.bind(gauge);
    const closing = new Map<string, () => void>();
    gauge.dec = ((labels: { door: string }) => {
      decrement(labels);
      closing.get(labels.door)?.();
    }) as typeof gauge.dec;
    const givenUp = async (reader: StalledReader, door: string, voice: string) => {
      const made = await new Promise<number>((resolve) =>
        closing.set(door, () => {
          closing.delete(door);
          reader.resume();
          resolve(tts.spoken.get(voice) ?? 0);
        }),
      );
      return { code: await reader.closed, made };
    };
    const closes = Promise.all([givenUp(native, 'native', 'awb'), givenUp(realtime, 'realtime', 'rms')]);
    native.pause();
    realtime.pause();
    native.send(encodeClientMessage({ type: 'text', text: LONG }));
    realtime.send(JSON.stringify({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: LONG }] } }));
    realtime.send(JSON.stringify({ type: 'response.create' }));

    other.send({ type: 'text', text: 'Good morning.' });
    const done = (await other.waitFor((m) => m.type === 'done')) as Extract<ServerMessage, { type: 'done' }>;
    t.equal(done.finish, 'stop', 'the other session\'s turn completes');
    t.ok(other.messages.some((m) => m.type === 'audio'), 'with its spoken reply');

    const [nativeEnd, realtimeEnd] = await closes;
    t.equal(nativeEnd.code, 1008, 'native: closed with 1008 (policy: client is not reading)');
    t.equal(realtimeEnd.code, 1008, 'Realtime: closed with 1008');
    other.send({ type: 'text', text: 'Still there?' });
    const again = (await other.waitFor((m) => m.type === 'done' && m.turnId !== done.turnId)) as Extract<ServerMessage, { type: 'done' }>;
    t.equal(again.finish, 'stop', 'the other session goes on');
    const made = { awb: nativeEnd.made, rms: realtimeEnd.made };
    t.same({ awb: tts.spoken.get('awb') ?? 0, rms: tts.spoken.get('rms') ?? 0 }, made, 'nothing more was synthesised for the closed sessions');

    const nativeMessages = native.messages.map(decodeServerMessage);
    const nativeGot = nativeMessages.reduce((n, m) => n + (m.type === 'audio' ? m.data.length : 0), 0) / 2 / 48_000;
    t.notOk(nativeMessages.some((m) => m.type === 'done'), 'native: the reply never finished');
    t.ok(nativeGot > 0, `native: the reader got ${nativeGot.toFixed(1)} s of audio before the close`);
    t.ok(made.awb < whole.awb / 2, `native: ${(made.awb / 24_000).toFixed(1)} s of the ~${(whole.awb / 24_000).toFixed(0)} s reply were synthesised, then it stopped`);
    t.ok(nativeGot <= made.awb / 24_000, 'the reader got no more than was made');

    const events = realtime.messages.map(json);
    const realtimeGot = events.reduce((n, e) => n + (e.type === 'response.output_audio.delta' ? Buffer.from(e.delta as string, 'base64').length : 0), 0) / 2 / 48_000;
    t.notOk(events.some((e) => e.type === 'response.done'), 'Realtime: the response never finished');
    t.ok(made.rms < whole.rms / 2, `Realtime: ${(made.rms / 24_000).toFixed(1)} s of the ~${(whole.rms / 24_000).toFixed(0)} s reply were synthesised, then it stopped`);
    t.ok(realtimeGot <= made.rms / 24_000, `the reader got ${realtimeGot.toFixed(1)} s, no more than was made`);
    t.equal((await fetch(`${server.url}/health`)).status, 200, 'server healthy');
  });
}
