import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { OpusDecoder } from 'opus-decoder';
import { OggOpusDemuxer, parseOggOpus } from '../../clients/node/ogg.js';
import { speechFixture } from '../fixtures/speech.js';

const run = promisify(execFile);

// Ogg's CRC, written here independently of the demuxer so page-building tests check it too.
const CRC_TABLE = Array.from({ length: 256 }, (_, i) => {
  let r = i << 24;
  for (let k = 0; k < 8; k++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
  return r >>> 0;
});

/** One Ogg page; `laces` are the segment sizes, `continued` marks a packet carried over. */
function page(body: Uint8Array, laces: number[], o: { seq: number; serial: number; bos?: boolean; continued?: boolean }): Uint8Array {
  const out = new Uint8Array(27 + laces.length + body.length);
  const view = new DataView(out.buffer);
  out.set([0x4f, 0x67, 0x67, 0x53, 0, (o.continued ? 1 : 0) | (o.bos ? 2 : 0)]);
  view.setUint32(14, o.serial, true);
  view.setUint32(18, o.seq, true);
  out[26] = laces.length;
  out.set(laces, 27);
  out.set(body, 27 + laces.length);
  let crc = 0;
  for (const byte of out) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ byte) & 0xff]!) >>> 0;
  view.setUint32(22, crc, true);
  return out;
}

function laces(length: number): number[] {
  return [...Array<number>(Math.floor(length / 255)).fill(255), length % 255];
}

/** Packs packets into pages of at most `perPage` segments, splitting packets across pages. */
function paginate(packets: Uint8Array[], perPage: number, serial: number): Uint8Array[] {
  const segments: { bytes: Uint8Array; lace: number }[] = [];
  for (const p of packets) {
    let pos = 0;
    for (const lace of laces(p.length)) {
      segments.push({ bytes: p.subarray(pos, pos + lace), lace });
      pos += lace;
    }
  }
  const pages: Uint8Array[] = [];
  for (let i = 0; i < segments.length; i += perPage) {
    const chunk = segments.slice(i, i + perPage);
    const body = Buffer.concat(chunk.map((s) => s.bytes));
    const continued = i > 0 && segments[i - 1]!.lace === 255;
    pages.push(page(body, chunk.map((s) => s.lace), { seq: pages.length, serial, bos: i === 0, continued }));
  }
  return pages;
}

function opusHead(channels: number, preSkip: number, rate: number): Uint8Array {
  const head = Buffer.alloc(19);
  head.write('OpusHead', 0, 'ascii');
  head[8] = 1;
  head[9] = channels;
  head.writeUInt16LE(preSkip, 10);
  head.writeUInt32LE(rate, 12);
  return head;
}

const tags = Buffer.from('OpusTags\x05\x00\x00\x00hello\x00\x00\x00\x00', 'latin1');

function rms(x: Float32Array, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += x[i]! * x[i]!;
  return Math.sqrt(sum / (to - from));
}

t.test('opusenc output demuxes into decodable 20 ms packets that carry the speech', async (t) => {
  const f = await speechFixture(1);
  const ogg = parseOggOpus(await readFile(f.opusPath));
  t.equal(ogg.channels, 1);
  t.equal(ogg.inputSampleRate, 16000);
  t.ok(ogg.preSkip > 0 && ogg.preSkip < 48000, `pre-skip ${ogg.preSkip}`);
  t.ok(Math.abs(ogg.packets.length - f.durationMs / 20) <= 2, `${ogg.packets.length} packets for ${f.durationMs} ms`);

  const decoder = new OpusDecoder({ sampleRate: 16000, channels: 1 });
  await decoder.ready;
  t.teardown(() => decoder.free());
  const pcm = new Float32Array(ogg.packets.length * 320);
  let bad = 0;
  for (const [i, packet] of ogg.packets.entries()) {
    const out = decoder.decodeFrame(packet);
    if (out.samplesDecoded !== 320 || out.errors.length > 0) bad++;
    pcm.set(out.channelData[0]!.subarray(0, 320), i * 320);
  }
  t.equal(bad, 0, 'every packet decodes to 320 samples');

  // The decoded stream is the fixture delayed by pre-skip: loud where the truth says speech.
  const delay = ogg.preSkip / 3;
  for (const u of f.truth) {
    const speech = rms(pcm, u.startMs * 16 + delay, u.endMs * 16 + delay);
    const source = rms(f.samples16k, u.startMs * 16, u.endMs * 16);
    t.ok(Math.abs(20 * Math.log10(speech / source)) < 1.5, `"${u.text}" decodes at the source level`);
  }
  const gap = rms(pcm, f.truth[0]!.endMs * 16 + delay + 3200, f.truth[1]!.startMs * 16 + delay - 3200);
  t.ok(gap < 1e-3, `silence between sentences decodes near silent (rms ${gap})`);
});

t.test('the incremental demuxer gives the same packets for any chunking', async (t) => {
  const f = await speechFixture(2);
  const bytes = new Uint8Array(await readFile(f.opusPath));
  const whole = parseOggOpus(bytes).packets;
  for (const size of [1, 7, 27, 4096]) {
    const demuxer = new OggOpusDemuxer();
    const got: Uint8Array[] = [];
    for (let pos = 0; pos < bytes.length; pos += size) got.push(...demuxer.push(bytes.subarray(pos, pos + size)));
    demuxer.end();
    t.equal(got.length, whole.length, `chunks of ${size}`);
    t.ok(got.every((p, i) => Buffer.compare(p, whole[i]!) === 0), `chunks of ${size}: identical packets`);
    t.same(demuxer.head, { channels: 1, preSkip: parseOggOpus(bytes).preSkip, inputSampleRate: 16000 });
  }
});

t.test('packets laced across pages and foreign streams', async (t) => {
  const f = await speechFixture(3);
  const audio = f.opusPackets.slice(0, 30);
  const big = Uint8Array.from({ length: 700 }, (_, i) => i & 0xff); // 3 laces, spans pages of 2 segments
  const packets = [opusHead(1, 312, 16000), tags, ...audio, big, new Uint8Array(255), new Uint8Array(0)];
  const opus = paginate(packets, 2, 7);
  const foreign = page(Buffer.from('\x80theora', 'latin1'), [7], { seq: 0, serial: 99, bos: true });
  const stream = Buffer.concat([opus[0]!, foreign, ...opus.slice(1)]);
  const got = parseOggOpus(stream);
  t.equal(got.preSkip, 312);
  t.equal(got.packets.length, audio.length + 3);
  t.same(Array.from(got.packets[audio.length]!), Array.from(big));
  t.equal(got.packets[audio.length + 1]!.length, 255, 'a 255-byte packet ends with a zero lace');
  t.equal(got.packets[audio.length + 2]!.length, 0);
  t.ok(audio.every((p, i) => Buffer.compare(p, got.packets[i]!) === 0), 'audio packets intact');
});

t.test('non-Ogg and non-Opus input throws a clear error', async (t) => {
  const f = await speechFixture(1);
  const opus = new Uint8Array(await readFile(f.opusPath));
  const garbage = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7919) & 0xff);
  t.throws(() => parseOggOpus(garbage), { message: /not an Ogg stream/ });
  const wav = await readFile(f.wav16kPath);
  t.throws(() => parseOggOpus(wav), { message: /not an Ogg stream/ });
  t.throws(() => parseOggOpus(new Uint8Array(0)), { message: /no Ogg pages/ });
  t.throws(() => parseOggOpus(opus.subarray(0, opus.length - 100)), { message: /truncated Ogg stream/ });
  const corrupt = opus.slice();
  corrupt[Math.floor(corrupt.length / 2)]! ^= 0x40;
  t.throws(() => parseOggOpus(corrupt), { message: /CRC mismatch/ });
  const cutPacket = paginate([opusHead(1, 312, 16000), tags, new Uint8Array(600)], 2, 1);
  t.throws(() => parseOggOpus(Buffer.concat(cutPacket.slice(0, -1))), { message: /last packet continues/ });
  const noTags = Buffer.concat(paginate([opusHead(1, 312, 16000), f.opusPackets[0]!], 10, 1));
  t.throws(() => parseOggOpus(noTags), { message: /not OpusTags/ });

  const dir = await mkdtemp(join(tmpdir(), 'earshot-ogg-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const vorbis = join(dir, 'speech.ogg');
  await run('sox', [f.wav16kPath, vorbis]);
  const vorbisBytes = await readFile(vorbis);
  t.throws(() => parseOggOpus(vorbisBytes), { message: /not an Opus stream/ });
});
