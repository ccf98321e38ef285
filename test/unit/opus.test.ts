import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { OpusDecoder } from 'opus-decoder';
import { parseOggOpus } from '../../clients/node/ogg.js';
import { EarshotError } from '../../protocol/errors.js';
import { OpusPacketDecoder } from '../../server/audio/opus.js';
import { speechFixture, wavVariant } from '../fixtures/speech.js';

const run = promisify(execFile);
const dir = await mkdtemp(join(tmpdir(), 'earshot-opus-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

const mono = (await speechFixture(1)).opusPackets.slice(0, 150);

async function stereoPackets(): Promise<Uint8Array[]> {
  const wav = join(dir, 'stereo.wav');
  await writeFile(wav, await wavVariant(await speechFixture(2), { rate: 48000, channels: 2 }));
  await run('opusenc', ['--quiet', '--framesize', '20', wav, join(dir, 'stereo.opus')]);
  const ogg = parseOggOpus(await readFile(join(dir, 'stereo.opus')));
  t.equal(ogg.channels, 2, 'opusenc kept both channels');
  return ogg.packets.slice(0, 150);
}
const stereo = await stereoPackets();

/** The library's own public path, one instance per stream: what the shared hosts must equal. */
async function reference(packets: Uint8Array[], channels: 1 | 2): Promise<Float32Array[]> {
  const decoder = new OpusDecoder({ sampleRate: 16000, channels });
  await decoder.ready;
  const out = packets.map((p) => {
    const { channelData, samplesDecoded } = decoder.decodeFrame(p);
    const frame = new Float32Array(samplesDecoded);
    for (let i = 0; i < samplesDecoded; i++) frame[i] = channels === 1 ? channelData[0]![i]! : (channelData[0]![i]! + channelData[1]![i]!) * 0.5;
    return frame;
  });
  decoder.free();
  return out;
}

/** Decodes every stream's packets interleaved (one packet per stream in turn), as a server does. */
function interleaved(decoders: OpusPacketDecoder[], packetsOf: (i: number) => Uint8Array[]): Float32Array[][] {
  const out: Float32Array[][] = decoders.map(() => []);
  const length = Math.max(...decoders.map((_, i) => packetsOf(i).length));
  for (let k = 0; k < length; k++)
    decoders.forEach((d, i) => {
      const p = packetsOf(i)[k];
      if (p) out[i]!.push(d.decode(p).slice());
    });
  return out;
}

const sameFrames = (a: Float32Array[], b: Float32Array[]) => a.length === b.length && a.every((f, i) => f.length === b[i]!.length && f.every((x, j) => x === b[i]![j]));

t.test('interleaved streams, mono sharing a WASM instance and stereo alone, decode exactly what opus-decoder decodes', async (t) => {
  const [monoRef, stereoRef] = await Promise.all([reference(mono, 1), reference(stereo, 2)]);
  t.equal(monoRef[0]!.length, 320, '20 ms at 16 kHz');
  const decoders = await Promise.all([1, 2, 1, 2, 1].map((c) => OpusPacketDecoder.create(48000, c as 1 | 2)));
  const packetsOf = (i: number) => (i % 2 === 0 ? mono : stereo);
  const out = interleaved(decoders, packetsOf);
  out.forEach((frames, i) => t.ok(sameFrames(frames, i % 2 === 0 ? monoRef : stereoRef), `stream ${i} (${i % 2 ? 'stereo' : 'mono'}) bit-identical`));
  for (const d of decoders) d.close();
});

t.test('more streams than one instance holds: new instances open, and states on both decode correctly', async (t) => {
  const monoRef = await reference(mono, 1);
  // 384 mono streams per instance: 500 span two; 300 more after closing open a third.
  const first = await Promise.all(Array.from({ length: 500 }, () => OpusPacketDecoder.create(16000, 1)));
  const sample = [0, 1, 383, 384, 385, 499].map((i) => first[i]!);
  t.ok(interleaved(sample, () => mono).every((frames) => sameFrames(frames, monoRef)), 'streams on either side of the boundary decode the reference');
  for (const d of first) d.close();
  const second = await Promise.all(Array.from({ length: 300 }, () => OpusPacketDecoder.create(16000, 1)));
  t.ok(interleaved([second[0]!, second[299]!], () => mono).every((frames) => sameFrames(frames, monoRef)), 'streams opened after closing decode the reference');
  for (const d of second) d.close();
});

t.test('bad packets and bad use get clear errors', async (t) => {
  await t.rejects(OpusPacketDecoder.create(44100, 1), { code: 'unsupported', message: /opus sample rate 44100/ });
  const d = await OpusPacketDecoder.create(16000, 1);
  const codeOf = (f: () => unknown) => {
    try {
      f();
      return 'no error';
    } catch (err) {
      return err instanceof EarshotError ? err.code : String(err);
    }
  };
  t.equal(codeOf(() => d.decode(new Uint8Array(0))), 'bad_audio', 'empty packet');
  t.equal(codeOf(() => d.decode(new Uint8Array(4000))), 'bad_audio', 'oversized packet');
  t.equal(codeOf(() => d.decode(Uint8Array.of(0xff, 0xff, 0xff))), 'bad_audio', 'corrupt packet');
  t.equal(d.decode(mono[0]!).length, 320, 'the stream still decodes after bad packets');
  d.close();
  d.close();
  t.equal(codeOf(() => d.decode(mono[0]!)), 'internal', 'use after close is refused, not a decode on a freed state');
});
