/**
 * G.711 decoding against sox (the real codec): every μ-law and A-law code expands to exactly
 * the value sox gives, and a speech fixture encoded by sox decodes back to 16 kHz audio that
 * matches the original, whatever the packet size.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { alawToLinear, decodeG711Clip, G711Decoder, ulawToLinear } from '../../server/audio/g711.js';
import { speechFixture } from '../fixtures/speech.js';
import { g711Of, SOX_ENCODING } from './helpers.js';
import { correlation } from '../helpers/signal.js';

const run = promisify(execFile);

const dir = await mkdtemp(join(tmpdir(), 'earshot-g711-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

const fixture = await speechFixture(0);

for (const law of ['ulaw', 'alaw'] as const) {
  t.test(`${law}: every code matches sox`, async (t) => {
    const codes = join(dir, `codes.${law}`);
    await writeFile(codes, Buffer.from(Array.from({ length: 256 }, (_, i) => i)));
    const linear = join(dir, `codes.${law}.s16`);
    await run('sox', ['-t', 'raw', '-r', '8000', '-c', '1', '-b', '8', '-e', SOX_ENCODING[law], codes, '-t', 'raw', '-e', 'signed-integer', '-b', '16', linear]);
    const expected = await readFile(linear);
    const toLinear = law === 'ulaw' ? ulawToLinear : alawToLinear;
    const mismatches = Array.from({ length: 256 }, (_, i) => i).filter((i) => toLinear(i) !== expected.readInt16LE(2 * i));
    t.same(mismatches, [], 'no code decodes differently');
  });

  t.test(`${law}: speech decodes to 16 kHz in packets of any size`, async (t) => {
    const bytes = await g711Of(fixture.wav16kPath, law, join(dir, `speech.${law}`));
    const whole = decodeG711Clip(law, bytes);
    t.ok(Math.abs(whole.length - fixture.samples16k.length) <= 2, `length ${whole.length} ≈ ${fixture.samples16k.length}`);
    t.ok(correlation(whole, fixture.samples16k) > 0.98, 'the clip matches the original speech');

    for (const packet of [160, 333, 1]) {
      const decoder = new G711Decoder(law);
      const out = new Float32Array(whole.length);
      let at = 0;
      for (let i = 0; i < bytes.length; i += packet) {
        const samples = decoder.decode(bytes.subarray(i, i + packet));
        out.set(samples, at);
        at += samples.length;
      }
      let maxDiff = 0;
      for (let i = 0; i < at; i++) maxDiff = Math.max(maxDiff, Math.abs(out[i]! - whole[i]!));
      t.ok(at > whole.length - 64, `${packet}-byte packets: the stream holds back only the resampler's tail (${whole.length - at} samples)`);
      t.ok(maxDiff < 1e-5, `${packet}-byte packets: same samples as the whole clip (max diff ${maxDiff})`);
    }
  });
}
