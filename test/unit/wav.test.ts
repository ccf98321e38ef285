import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { decodeClip } from '../../server/audio/clip.js';
import { decodeWav, encodeWav16 } from '../../server/audio/wav.js';
import { speechFixture, wavVariant } from '../fixtures/speech.js';
import { correlation } from '../helpers/signal.js';

const run = promisify(execFile);
const dir = await mkdtemp(join(tmpdir(), 'earshot-wav-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const fixture = await speechFixture(0);

let files = 0;
/** Writes `bytes` where sox can read it and returns sox's own 16 kHz mono conversion. */
async function soxTo16k(bytes: Uint8Array): Promise<Float32Array> {
  const path = join(dir, `in-${files++}.wav`);
  await writeFile(path, bytes);
  const { stdout } = await run('sox', ['-D', path, '-r', '16000', '-c', '1', '-e', 'floating-point', '-b', '32', '-t', 'raw', '-'], { encoding: 'buffer', maxBuffer: 64 << 20 });
  return new Float32Array(stdout.buffer.slice(stdout.byteOffset, stdout.byteOffset + stdout.length));
}

/** A layout sox makes that the fixture helpers do not offer (8-bit unsigned, 64-bit float). */
async function soxWav(args: string[]): Promise<Buffer> {
  const path = join(dir, `out-${files++}.wav`);
  await run('sox', ['-D', fixture.wav16kPath, ...args, path]);
  return readFile(path);
}

const variants: { name: string; rate: number; channels: number; bytes: () => Promise<Buffer> }[] = [
  { name: 'stereo 44.1 kHz 16-bit', rate: 44100, channels: 2, bytes: () => wavVariant(fixture, { rate: 44100, channels: 2 }) },
  { name: 'mono 8 kHz 16-bit', rate: 8000, channels: 1, bytes: () => wavVariant(fixture, { rate: 8000, channels: 1 }) },
  { name: 'stereo 48 kHz 24-bit (extensible)', rate: 48000, channels: 2, bytes: () => wavVariant(fixture, { rate: 48000, channels: 2, bits: 24 }) },
  { name: 'mono 22.05 kHz 32-bit int', rate: 22050, channels: 1, bytes: () => wavVariant(fixture, { rate: 22050, channels: 1, bits: 32 }) },
  { name: 'stereo 44.1 kHz 32-bit float', rate: 44100, channels: 2, bytes: () => wavVariant(fixture, { rate: 44100, channels: 2, float: true }) },
  { name: 'mono 16 kHz 8-bit unsigned', rate: 16000, channels: 1, bytes: () => soxWav(['-b', '8', '-e', 'unsigned-integer']) },
  { name: 'mono 24 kHz 64-bit float', rate: 24000, channels: 1, bytes: () => soxWav(['-r', '24000', '-b', '64', '-e', 'floating-point']) },
];

for (const v of variants) {
  t.test(`${v.name}: duration, layout and 16 kHz decode match sox`, async (t) => {
    const bytes = await v.bytes();
    const decoded = decodeWav(bytes);
    t.equal(decoded.sampleRate, v.rate);
    t.equal(decoded.channels.length, v.channels);
    const durationMs = (decoded.channels[0]!.length / decoded.sampleRate) * 1000;
    t.ok(Math.abs(durationMs - fixture.durationMs) <= 20, `decoded ${durationMs.toFixed(1)} ms, source ${fixture.durationMs} ms`);
    const clip = await decodeClip(bytes, 'wav');
    t.ok(Math.abs(clip.length / 16 - fixture.durationMs) <= 20, `16 kHz clip lasts ${clip.length / 16} ms`);
    const bySox = await soxTo16k(bytes);
    const r = correlation(clip, bySox);
    t.ok(r > 0.99, `correlation with sox's 16 kHz conversion ${r.toFixed(4)}`);
    t.ok(correlation(clip, fixture.samples16k) > 0.98, 'and with the source');
  });
}

t.test('encodeWav16 round-trips through decodeWav and sox reads it', async (t) => {
  const bytes = encodeWav16(fixture.samples16k, 16000);
  const back = decodeWav(bytes);
  t.equal(back.sampleRate, 16000);
  t.equal(back.channels.length, 1);
  t.equal(back.channels[0]!.length, fixture.samples16k.length);
  let worst = 0;
  for (let i = 0; i < back.channels[0]!.length; i++) worst = Math.max(worst, Math.abs(back.channels[0]![i]! - fixture.samples16k[i]!));
  t.ok(worst <= 1 / 32767, `largest round-trip error ${worst}`);
  t.ok(correlation(await soxTo16k(bytes), fixture.samples16k) > 0.9999);
});

/** The fixture's 16 kHz WAV with its chunks rebuilt: odd-sized unknown chunks and a chosen data size. */
function rebuilt(options: { dataSize?: number; extra?: Uint8Array; trailing?: Uint8Array }): Uint8Array {
  const plain = encodeWav16(fixture.samples16k, 16000);
  const fmt = plain.subarray(12, 36);
  const data = plain.subarray(44);
  const chunk = (id: string, body: Uint8Array) => {
    const out = new Uint8Array(8 + body.length + (body.length & 1));
    out.set(Buffer.from(id, 'ascii'));
    new DataView(out.buffer).setUint32(4, body.length, true);
    out.set(body, 8);
    return out;
  };
  const dataHeader = new Uint8Array(8);
  dataHeader.set(Buffer.from('data', 'ascii'));
  new DataView(dataHeader.buffer).setUint32(4, options.dataSize ?? data.length, true);
  const parts = [Buffer.from('RIFF\0\0\0\0WAVE', 'ascii'), options.extra ? chunk('LIST', options.extra) : new Uint8Array(0), fmt, chunk('junk', new Uint8Array(3)), dataHeader, data, options.trailing ?? new Uint8Array(0)];
  return Buffer.concat(parts);
}

t.test('odd-sized unknown chunks are skipped with their pad byte', async (t) => {
  const decoded = decodeWav(rebuilt({ extra: new Uint8Array([1, 2, 3, 4, 5]) }));
  t.same(decoded.channels[0]!.length, fixture.samples16k.length);
  t.equal(decoded.channels[0]![fixture.truth[0]!.startMs * 16 + 100], Math.round(fixture.samples16k[fixture.truth[0]!.startMs * 16 + 100]! * 32767) / 32768);
});

t.test('streamed WAVs: data size 0, 0xFFFFFFFF or past the end reads to the end of the file', async (t) => {
  for (const dataSize of [0, 0xffffffff, 0x7ffff000]) {
    const decoded = decodeWav(rebuilt({ dataSize }));
    t.equal(decoded.channels[0]!.length, fixture.samples16k.length, `data size 0x${dataSize.toString(16)}`);
  }
  // A file cut in the middle of a sample keeps the whole samples before the cut.
  const cut = rebuilt({ dataSize: 0xffffffff });
  t.equal(decodeWav(cut.subarray(0, cut.length - 1)).channels[0]!.length, fixture.samples16k.length - 1);
  // A known data size stops before trailing chunks.
  const trailing = rebuilt({ trailing: Buffer.from('LIST\x04\0\0\0abcd', 'latin1') });
  t.equal(decodeWav(trailing).channels[0]!.length, fixture.samples16k.length);
});

t.test('malformed or unsupported WAVs throw bad_audio with a clear message', async (t) => {
  const good = encodeWav16(fixture.samples16k.subarray(0, 1600), 16000);
  const patched = (write: (v: DataView) => void) => {
    const copy = good.slice();
    write(new DataView(copy.buffer));
    return copy;
  };
  const cases: [string, Uint8Array, RegExp][] = [
    ['empty', new Uint8Array(0), /too short/],
    ['garbage', Buffer.from('this is not audio at all, just some text'), /not a RIFF\/WAVE/],
    ['header only', good.subarray(0, 12), /no fmt chunk/],
    ['truncated fmt chunk', good.subarray(0, 30), /runs past the end/],
    ['no data chunk', good.subarray(0, 36), /no data chunk/],
    ['empty data chunk', patched((v) => v.setUint32(40, 0, true)).subarray(0, 44), /no samples/],
    ['ADPCM', patched((v) => v.setUint16(20, 2, true)), /format tag 0x2/],
    ['12-bit', patched((v) => v.setUint16(34, 12, true)), /12-bit/],
    ['zero channels', patched((v) => v.setUint16(22, 0, true)), /0 channels/],
    ['zero rate', patched((v) => v.setUint32(24, 0, true)), /sample rate 0/],
    ['wrong block align', patched((v) => v.setUint16(32, 4, true)), /block align/],
    ['big-endian RIFX', patched((v) => v.setUint8(3, 0x58)), /RIFX/],
    ['data before fmt', Buffer.concat([Buffer.from('RIFF\0\0\0\0WAVE', 'ascii'), good.subarray(36), good.subarray(12, 36)]), /before the fmt/],
  ];
  for (const [name, bytes, message] of cases) {
    t.throws(() => decodeWav(bytes), { name: 'EarshotError', code: 'bad_audio', message }, name);
  }
  await t.rejects(decodeClip(good.subarray(0, 30), 'wav'), { code: 'bad_audio' }, 'decodeClip too');
});
