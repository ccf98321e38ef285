import t from 'tap';
import { resample, Resampler } from '../../server/audio/resample.js';

function tone(freq: number, rate: number, seconds: number): Float32Array {
  const out = new Float32Array(Math.round(rate * seconds));
  for (let i = 0; i < out.length; i++) out[i] = 0.5 * Math.sin((2 * Math.PI * freq * i) / rate);
  return out;
}

function rms(x: Float32Array, skip = 200): number {
  let e = 0;
  for (let i = skip; i < x.length - skip; i++) e += x[i]! * x[i]!;
  return Math.sqrt(e / (x.length - 2 * skip));
}

for (const from of [8000, 24000, 44100, 48000]) {
  t.test(`${from} Hz → 16 kHz`, async (t) => {
    const y = resample(tone(440, from, 1), from, 16000);
    t.equal(y.length, 16000, 'duration preserved exactly');
    const ideal = tone(440, 16000, 1);
    const err = new Float32Array(y.length);
    for (let i = 0; i < y.length; i++) err[i] = y[i]! - ideal[i]!;
    t.ok(rms(err) < 1e-3, `a 440 Hz tone passes unchanged (error rms ${rms(err).toExponential(1)})`);
  });
}

t.test('content above the new Nyquist is removed, not aliased', async (t) => {
  const y = resample(tone(10_000, 48000, 1), 48000, 16000);
  t.ok(rms(y) < 1e-3, `10 kHz tone attenuated to rms ${rms(y).toExponential(1)}`);
});

t.test('streaming in 20 ms chunks equals one-shot', async (t) => {
  const x = tone(300, 24000, 0.5);
  const r = new Resampler(24000, 16000);
  const parts: number[] = [];
  for (let i = 0; i < x.length; i += 480) parts.push(...r.process(x.subarray(i, i + 480)));
  parts.push(...r.flush());
  t.same(parts, Array.from(resample(x, 24000, 16000)));
});
