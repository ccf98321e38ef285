/** The client's audio sources, on files made by sox, lame, espeak-ng and opusenc. */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileSource, opusPacketMs, pcmStreamSource, type AudioPacket, type AudioSource } from '../../clients/node/audio.js';
import { mp3Of, speechFixture, wavVariant } from '../fixtures/speech.js';

const fixture = await speechFixture(0);

async function collect(packets: AsyncIterable<AudioPacket>): Promise<{ sizes: number[]; ms: number; bytes: number[] }> {
  const sizes: number[] = [];
  const bytes: number[] = [];
  let ms = 0;
  for await (const p of packets) {
    sizes.push(p.payload.length);
    bytes.push(...p.payload);
    ms += p.durationMs;
  }
  return { sizes, ms, bytes };
}

/** The PCM16 a source sends, as samples in [-1, 1]. */
async function samplesOf(source: AudioSource): Promise<Float32Array> {
  const chunks: Buffer[] = [];
  for await (const packet of source.packets) chunks.push(Buffer.from(packet.payload));
  const bytes = Buffer.concat(chunks);
  const pcm = new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
  return Float32Array.from(pcm, (v) => v / 32768);
}

/** Normalised correlation of two signals over their common length (1 = same waveform). */
function correlation(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}

t.test('WAV of any common layout and MP3 are decoded to 16 kHz mono PCM16 that matches the source', async (t) => {
  const files: [string, Buffer][] = [
    ['16-bit 16 kHz mono', await readFile(fixture.wav16kPath)],
    ['24-bit 48 kHz stereo', await wavVariant(fixture, { rate: 48000, channels: 2, bits: 24 })],
    ['float 44.1 kHz mono', await wavVariant(fixture, { rate: 44100, channels: 1, float: true })],
    ['22.05 kHz', await wavVariant(fixture, { rate: 22050, channels: 1 })],
    ['MP3', await mp3Of(fixture)],
  ];
  for (const [name, bytes] of files) {
    const source = await fileSource(bytes);
    t.same([source.codec, source.sampleRate, source.channels], ['pcm16', 16000, 1], `${name}: sent as PCM16 16 kHz mono`);
    const samples = await samplesOf(source);
    t.ok(Math.abs((samples.length / 16000) * 1000 - fixture.durationMs) < 30, `${name}: ${(samples.length / 16).toFixed(0)} ms for ${fixture.durationMs} ms`);
    t.ok(correlation(samples, fixture.samples16k) > 0.9, `${name}: the same waveform`);
  }
});

t.test('the WAV espeak-ng writes (22050 Hz) is read', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'earshot-espeak-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await promisify(execFile)('espeak-ng', ['-w', join(dir, 'q.wav'), 'What is the capital of France?']);
  const bytes = await readFile(join(dir, 'q.wav'));
  t.equal(bytes.readUInt32LE(24), 22050, 'espeak-ng writes 22050 Hz');
  const samples = await samplesOf(await fileSource(bytes));
  t.ok(samples.length > 16000, `${samples.length} samples at 16 kHz`);
});

t.test('files it cannot read are refused by name, saying what it reads', async (t) => {
  const refusals: [string, Uint8Array, RegExp][] = [
    ['FLAC', Buffer.from('fLaC\0\0\0\x22 rest of a flac file'), /^FLAC files are not supported: earshot reads WAV .*MP3 and Ogg Opus; convert/],
    ['M4A', Buffer.from('\0\0\0\x20ftypM4A \0\0\0\0'), /^MP4\/M4A \(AAC\) files are not supported/],
    ['text', Buffer.from('hello, not audio'), /^unknown audio file: earshot reads WAV/],
    ['a broken WAV', Buffer.from('RIFF\0\0\0\0WAVEjunkjunk'), /^WAV: .*\(earshot reads WAV/],
    ['an ID3 tag and no MPEG audio', Buffer.from('ID3\u0004 not audio'), /^MP3: /],
    ['Ogg without Opus', Buffer.from('OggS\0\x02 not really'), /^Ogg: /],
  ];
  for (const [name, bytes, message] of refusals) await t.rejects(fileSource(bytes), { name: 'AudioFormatError', message }, name);
});

t.test('Ogg Opus: packet durations from the TOC add up to the file', async (t) => {
  const source = await fileSource(await readFile(fixture.opusPath));
  t.equal(source.codec, 'opus');
  const { sizes, ms } = await collect(source.packets);
  t.equal(sizes.length, fixture.opusPackets.length);
  t.ok(fixture.opusPackets.every((p) => opusPacketMs(p) === 20), 'opusenc --framesize 20');
  t.ok(Math.abs(ms - fixture.durationMs) <= 80, `${ms} ms of packets for ${fixture.durationMs} ms of audio`);
  // TOC forms from RFC 6716 3.1: SILK 60 ms, CELT 2.5 ms x2 (code 1), hybrid 10 ms x3 (code 3).
  t.equal(opusPacketMs(Uint8Array.of((3 << 3) | 0)), 60);
  t.equal(opusPacketMs(Uint8Array.of((16 << 3) | 1)), 5);
  t.equal(opusPacketMs(Uint8Array.of((12 << 3) | 3, 3)), 30);
});

t.test('raw PCM from a stream is re-cut into whole 20 ms packets, bytes unchanged', async (t) => {
  const input = Buffer.alloc(16000 * 2 * 0.05 + 3); // 50 ms and a sample and a half
  for (let i = 0; i < input.length; i++) input[i] = i & 0xff;
  const chunks = [input.subarray(0, 7), input.subarray(7, 1000), input.subarray(1000)];
  const { sizes, ms, bytes } = await collect(pcmStreamSource(Readable.from(chunks), 16000).packets);
  t.same(sizes, [640, 640, 322], 'two full packets and the whole samples left');
  t.equal(ms, 50 + 1000 / 16000, 'the half sample waits for more input that never comes');
  t.same(bytes, [...input.subarray(0, 1602)]);
});
