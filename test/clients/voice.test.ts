/** Spoken replies on /v1/stream through the Node client: frames per turn, `done` after the last, cancel, truncate, bad voices. */
import t from 'tap';
import { EarshotClient, EarshotServerError, type Turn } from '../../clients/node/index.js';
import { OpusPacketDecoder } from '../../server/audio/opus.js';
import { speechFixture } from '../fixtures/speech.js';
import { unheard } from '../helpers/hear.js';
import { TestClient } from '../helpers/native-client.js';
import { startTestServer } from '../helpers/server.js';

async function nextTurn(turns: AsyncIterator<Turn>): Promise<Turn> {
  const next = await turns.next();
  if (next.done) throw new Error('turn stream ended');
  return next.value;
}

async function collect(frames: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const frame of frames) out.push(frame);
  return out;
}

function pcmOf(frames: Uint8Array[]): Int16Array {
  const bytes = Buffer.concat(frames);
  return new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
}

// One server for the tests with its defaults: each server starts its own Silero thread, Opus
// thread and Flite processes. Every test's sessions close with its teardown.
const server = await startTestServer();
t.teardown(() => server.close(0));

t.test('a reply is spoken in PCM16 frames, says its text, and done follows the last frame', async (t) => {
  const client = new EarshotClient({ url: `${server.wsUrl}/v1/stream`, voice: { codec: 'pcm16', sampleRate: 16000 } });
  const ready = await client.connect();
  t.teardown(() => client.close());
  t.match(ready.voice, { codec: 'pcm16', sampleRate: 16000, frameMs: 100, raw: false });
  const order: string[] = [];
  client.on('audio', () => order.push('audio'));
  client.on('done', () => order.push('done'));
  const turns = client.turns();
  client.text('Good morning. Please open the window.');
  const turn = await nextTurn(turns);
  const frames = await collect(turn.audio());
  const result = await turn.done;
  t.equal(result.finish, 'stop');
  t.ok(frames.length > 5, `${frames.length} frames`);
  t.ok(frames.slice(0, -1).every((f) => f.length === 3200), 'whole 100 ms frames before the last');
  t.equal(order.at(-1), 'done', 'done after the last audio frame');
  t.ok(turn.firstAudioAt! >= turn.announcedAt, 'first audio timed');
  const { missing, heard } = await unheard(pcmOf(frames), 16000, ['morning', 'window']);
  t.same(missing, [], `heard: ${heard}`);

  // hello.voice.speed is asked of the TTS engine: the same reply at twice the rate is much shorter.
  const fast = new EarshotClient({ url: `${server.wsUrl}/v1/stream`, voice: { codec: 'pcm16', sampleRate: 16000, speed: 2 } });
  t.match(await fast.connect(), { voice: { speed: 2 } });
  t.teardown(() => fast.close());
  const fastTurns = fast.turns();
  fast.text('Good morning. Please open the window.');
  const fastTurn = await nextTurn(fastTurns);
  const fastSamples = pcmOf(await collect(fastTurn.audio())).length;
  t.equal((await fastTurn.done).text, result.text, 'the same reply');
  t.ok(fastSamples < pcmOf(frames).length * 0.75, `speed 2: ${fastSamples} samples against ${pcmOf(frames).length} at speed 1`);
  t.throws(() => new EarshotClient({ url: `${server.wsUrl}/v1/stream`, voice: { codec: 'pcm16', speed: 9 } }), /speed/, 'hello\'s schema bounds the speed');
  // The server checks it too, for clients that are not this one: a bad_message naming the field, then the close.
  const raw = await TestClient.connect(`${server.wsUrl}/v1/stream`);
  raw.send({ type: 'hello', codec: 'pcm16', sampleRate: 16000, voice: { codec: 'pcm16', speed: 9 } } as never);
  t.match(await raw.waitFor((m) => m.type === 'error'), { code: 'bad_message', message: /speed/ });
  t.equal(await raw.waitForClose(), 1007, 'and the socket closes (1007: invalid data)');
  const other = await client.sync().then(() => 'served', (err: unknown) => String(err));
  t.equal(other, 'served', 'the session beside it goes on');
});

t.test('cancel stops the audio; truncate keeps what was heard; raw frames', async (t) => {
  const slow = await startTestServer({ echoTokenDelayMs: 20 });
  t.teardown(() => slow.close(0));
  const client = new EarshotClient({ url: `${slow.wsUrl}/v1/stream`, voice: { codec: 'pcm16', raw: true } });
  const ready = await client.connect();
  t.teardown(() => client.close());
  t.equal(ready.voice?.raw, true);
  const turns = client.turns();
  client.text('One. Two three four five six seven. Eight nine ten eleven twelve thirteen fourteen fifteen sixteen.');
  const turn = await nextTurn(turns);
  const frames: Uint8Array[] = [];
  for await (const frame of turn.audio()) {
    frames.push(frame);
    if (frames.length === 3) client.cancel();
  }
  const result = await turn.done;
  t.equal(result.finish, 'cancelled');
  const afterDone: number[] = [];
  client.on('audio', () => afterDone.push(1));
  await client.sync();
  t.equal(afterDone.length, 0, 'no audio after done');
  const heardMs = (pcmOf(frames).length / 24000) * 1000;
  const truncated = new Promise<{ text: string }>((resolve) => client.once('truncated', resolve));
  client.truncate(turn.turnId, heardMs);
  const { text } = await truncated;
  t.ok(text.length > 0 && text.length < result.text.length, `kept "${text}" of "${result.text}"`);
  t.match(result.text, new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), 'a prefix of the reply');
  const error = new Promise<{ code: string; message: string }>((resolve) => client.once('error', resolve));
  client.truncate(turn.turnId, heardMs + 60_000);
  t.match(await error, { code: 'bad_message', message: /beyond/ });
});

t.test('Opus: 20 ms packets at 48 kHz that decode to the spoken reply', async (t) => {
  const client = new EarshotClient({ url: `${server.wsUrl}/v1/stream`, voice: { codec: 'opus', sampleRate: 48000 } });
  const ready = await client.connect();
  t.teardown(() => client.close());
  t.match(ready.voice, { codec: 'opus', sampleRate: 48000, frameMs: 20 });
  const turns = client.turns();
  client.text('Please open the window.');
  const turn = await nextTurn(turns);
  const packets = await collect(turn.audio());
  t.equal((await turn.done).finish, 'stop');
  const decoder = await OpusPacketDecoder.create(48000, 1);
  t.teardown(() => decoder.close());
  const decoded = packets.map((p) => decoder.decode(p).slice());
  t.ok(packets.length > 25, `${packets.length} packets`);
  t.ok(decoded.every((pcm) => pcm.length === 320), 'each packet is 20 ms (320 samples at 16 kHz)');
  const samples = new Float32Array(decoded.length * 320);
  decoded.forEach((pcm, i) => samples.set(pcm, i * 320));
  const { missing, heard } = await unheard(samples, 16000, ['open', 'window']);
  t.same(missing, [], `heard: ${heard}`);

  // Packets are encoded off the event loop: a cancel drops those still encoding, and the next turn speaks afresh.
  const cut = (client.text('One. Two three four five six seven. Eight nine ten eleven twelve thirteen fourteen fifteen sixteen.'), await nextTurn(turns));
  let heardPackets = 0;
  for await (const _ of cut.audio()) if (++heardPackets === 3) client.cancel();
  t.equal((await cut.done).finish, 'cancelled');
  const afterDone: number[] = [];
  client.on('audio', () => afterDone.push(1));
  await client.sync();
  t.equal(afterDone.length, 0, 'no packet after the cancelled turn\'s done');
  client.text('Thank you.');
  const next = await nextTurn(turns);
  const more = await collect(next.audio());
  t.equal((await next.done).finish, 'stop');
  t.ok(more.length > 10 && more.every((p) => decoder.decode(p).length === 320), `the next turn: ${more.length} packets that decode`);
});

t.test('vad messages go out at once, ahead of spoken frames still encoding; other messages keep their place', async (t) => {
  // Every Opus answer is held until the test lets it go: the reply's frames stay "encoding"
  // (as on a busy machine, where the encoding thread runs last) while the user speaks.
  const opus = server.ctx.voice!.encoding;
  const request = opus.request.bind(opus);
  const held: (() => void)[] = [];
  let holding = true;
  let firstHeld!: () => void;
  const encoding = new Promise<void>((resolve) => (firstHeld = resolve));
  // The shared server's thread answers as before once this test is over.
  t.teardown(() => void delete (opus as Partial<typeof opus>).request);
  opus.request = (job, done) =>
    request(job, (result) => {
      if (!holding) return done(result);
      held.push(() => done(result));
      firstHeld();
    });
  const fixture = await speechFixture(0);
  const client = new EarshotClient({ url: `${server.wsUrl}/v1/stream`, codec: 'opus', sampleRate: 16000, vad: { bargeIn: false }, voice: { codec: 'opus', raw: true } });
  await client.connect();
  t.teardown(() => client.close());
  const order: string[] = [];
  client.on('turn', () => order.push('turn'));
  client.on('done', () => order.push('done'));
  const silence = new Promise<void>((resolve) =>
    client.on('vad', (m) => {
      order.push(`vad ${m.state}`);
      if (m.state === 'silence') resolve();
    }),
  );
  const turns = client.turns();
  client.text('Please open the window.');
  const turn = await nextTurn(turns);
  await encoding;
  // The first sentence and a second of the pause after it: speech, then silence, decided while the reply's frames wait.
  const until = Math.ceil((fixture.truth[0]!.endMs + 1000) / 20);
  for (const packet of fixture.opusPackets.slice(0, until)) await client.sendAudio(packet);
  await silence;
  t.same(order, ['turn', 'vad speech', 'vad silence'], 'both vad messages came while the reply\'s frames were held');
  holding = false;
  for (const release of held.splice(0)) release();
  const frames = await collect(turn.audio());
  t.equal((await turn.done).finish, 'stop');
  t.ok(frames.length > 25, `the reply was spoken once its frames were let go (${frames.length} packets, then done)`);
  // The utterance's own turn was decided with the silence, but its announcement keeps its place after the reply before it.
  await nextTurn(turns);
  t.same(order.slice(3, 5), ['done', 'turn'], 'the next turn is announced after the held reply\'s done');
});

t.test('an unknown voice or rate is refused at hello, naming what is available', async (t) => {
  const voice = new EarshotClient({ url: `${server.wsUrl}/v1/stream`, voice: { codec: 'pcm16', name: 'nobody' } });
  const err = await voice.connect().catch((e: unknown) => e);
  t.type(err, EarshotServerError);
  t.match(err, { code: 'bad_message', message: /voice 'nobody' is not available; voices: .*alloy/ });
  const rate = new EarshotClient({ url: `${server.wsUrl}/v1/stream`, voice: { codec: 'opus', sampleRate: 44100 } });
  t.match(await rate.connect().catch((e: unknown) => e), { code: 'unsupported', message: /use one of 24000, 48000/ });
});
