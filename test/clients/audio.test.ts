/** The client's audio sources, on files made by sox and opusenc. */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { AudioFormatError, fileSource, opusPacketMs, parseWav, pcmStreamSource, type AudioPacket } from '../../clients/node/audio.js';
import { speechFixture, wavVariant } from '../fixtures/speech.js';

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

t.test('WAV: mono 16 kHz and stereo 48 kHz are read as sox wrote them', async (t) => {
  const mono = parseWav(await readFile(fixture.wav16kPath));
  t.same([mono.sampleRate, mono.channels, mono.data.length], [16000, 1, fixture.samples16k.length * 2]);
  const stereo = parseWav(await wavVariant(fixture, { rate: 48000, channels: 2 }));
  t.same([stereo.sampleRate, stereo.channels], [48000, 2]);
  t.ok(Math.abs(stereo.data.length / 4 / 48000 - fixture.durationMs / 1000) < 0.01);
  const source = fileSource(await wavVariant(fixture, { rate: 48000, channels: 2 }));
  const { sizes, ms } = await collect(source.packets);
  t.equal(sizes[0], 48 * 20 * 2 * 2, '20 ms of stereo 48 kHz');
  t.ok(Math.abs(ms - fixture.durationMs) < 1);
});

t.test('WAV: formats the protocol cannot carry are refused with a way out', async (t) => {
  t.throws(() => parseWav(new Uint8Array(0)), AudioFormatError);
  t.throws(() => parseWav(Uint8Array.from(Buffer.from('RIFF\0\0\0\0WAVE'))), /no data chunk/);
  const deep = await wavVariant(fixture, { rate: 48000, channels: 2, bits: 24 });
  t.throws(() => parseWav(deep), /not 16-bit PCM.*sox/);
  const cd = await wavVariant(fixture, { rate: 44100, channels: 2, bits: 16 });
  t.throws(() => parseWav(cd), /44100 Hz is not supported/);
  t.throws(() => fileSource(Buffer.from('ID3\u0004 not audio')), /expected WAV/);
});

t.test('Ogg Opus: packet durations from the TOC add up to the file', async (t) => {
  const source = fileSource(await readFile(fixture.opusPath));
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
