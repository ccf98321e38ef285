import t from 'tap';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { mp3Of, speechFixture, wavVariant, type SpeechFixture } from '../fixtures/speech.js';
import { SENTENCES } from '../fixtures/sentences.js';

const run = promisify(execFile);
const dB = (x: number) => 20 * Math.log10(x);

function rms(x: Float32Array | Int16Array, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += x[i]! * x[i]!;
  return Math.sqrt(sum / (to - from));
}

/** Sample ranges of the silences: lead, gaps between sentences, tail (50 ms kept clear of speech). */
function silences(f: SpeechFixture): [number, number][] {
  const edges = [0, ...f.truth.flatMap((u) => [u.startMs, u.endMs]), f.durationMs];
  const out: [number, number][] = [];
  for (let i = 0; i < edges.length; i += 2) out.push([(edges[i]! + 50) * 16, (edges[i + 1]! - 50) * 16]);
  return out;
}

t.test('sentence list suits a VAD: about 40, distinct, no commas', async (t) => {
  t.ok(SENTENCES.length >= 40);
  t.equal(new Set(SENTENCES).size, SENTENCES.length);
  t.notOk(SENTENCES.some((s) => /[,;:]/.test(s)));
});

t.test('layout: one truth entry per sentence, lead, gaps of at least 1 s, tail', async (t) => {
  for (const id of [0, 1, 2, 3, 4, 5]) {
    const f = await speechFixture(id);
    t.equal(f.truth.length, 3, `fixture ${id} has 3 utterances`);
    t.equal(f.samples16k.length, f.durationMs * 16);
    t.equal(f.truth[0]!.startMs, 500);
    t.equal(f.durationMs - f.truth.at(-1)!.endMs, 1500);
    for (let i = 1; i < f.truth.length; i++) {
      const gap = f.truth[i]!.startMs - f.truth[i - 1]!.endMs;
      t.ok(gap >= 1000 && gap <= 1600, `fixture ${id} gap ${i}: ${gap} ms`);
    }
    for (const u of f.truth) {
      t.ok(u.endMs - u.startMs >= 1200 && u.endMs - u.startMs <= 3000, `"${u.text}" lasts ${u.endMs - u.startMs} ms`);
      t.ok(dB(rms(f.samples16k, u.startMs * 16, u.endMs * 16)) > -30, `"${u.text}" is audible`);
    }
    for (const [from, to] of silences(f)) t.equal(rms(f.samples16k, from, to), 0, `fixture ${id}: digital silence ${from}..${to}`);
  }
  const two = await speechFixture(7, { sentences: 2 });
  t.equal(two.truth.length, 2);
  await t.rejects(speechFixture(1, { sentences: 0 }), RangeError);
});

t.test('different ids give different audio; the same id gives the same fixture', async (t) => {
  const hashes = new Set<string>();
  for (let id = 0; id < 8; id++) {
    const f = await speechFixture(id);
    hashes.add(createHash('sha1').update(f.samples16k).digest('hex'));
  }
  t.equal(hashes.size, 8);
  t.equal(await speechFixture(3), await speechFixture(3), 'cached in process');
});

t.test('noisy variant: same speech and length, quiet-room noise in the silences', async (t) => {
  const clean = await speechFixture(4);
  const noisy = await speechFixture(4, { noisy: true });
  t.equal(noisy.noisy, true);
  t.equal(noisy.samples16k.length, clean.samples16k.length);
  t.same(noisy.truth, clean.truth);
  t.not(noisy.wav16kPath, clean.wav16kPath);
  const speech = rms(clean.samples16k, clean.truth[0]!.startMs * 16, clean.truth[0]!.endMs * 16);
  for (const [from, to] of silences(noisy)) {
    const below = dB(speech / rms(noisy.samples16k, from, to));
    t.ok(below > 22 && below < 34, `noise ${below.toFixed(1)} dB below speech`);
  }
  const residual = new Float32Array(clean.samples16k.length);
  for (let i = 0; i < residual.length; i++) residual[i] = noisy.samples16k[i]! - clean.samples16k[i]!;
  t.ok(dB(speech / rms(residual, 0, residual.length)) > 22, 'the difference is only the noise');
  t.not(noisy.opusPackets.length, 0);
});

t.test('24 kHz PCM and Opus packets match the 16 kHz audio', async (t) => {
  const f = await speechFixture(2);
  t.ok(Math.abs(f.pcm24k.length - f.samples16k.length * 1.5) <= 4, `${f.pcm24k.length} vs ${f.samples16k.length * 1.5}`);
  for (const u of f.truth) {
    const a = dB(rms(f.samples16k, u.startMs * 16, u.endMs * 16));
    const b = dB(rms(f.pcm24k, u.startMs * 24, u.endMs * 24) / 32768);
    t.ok(Math.abs(a - b) < 0.5, `"${u.text}": ${a.toFixed(1)} dB at 16k, ${b.toFixed(1)} dB at 24k`);
  }
  t.ok(Math.abs(f.opusPackets.length - f.durationMs / 20) <= 2);
});

t.test('WAV variants and MP3 are readable by sox', async (t) => {
  const f = await speechFixture(0);
  const dir = await mkdtemp(join(tmpdir(), 'earshot-fixtures-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const soxi = async (bytes: Buffer, name: string) => {
    const path = join(dir, name);
    await writeFile(path, bytes);
    const [rate, channels, bits, seconds, encoding] = await Promise.all(
      ['-r', '-c', '-b', '-D', '-e'].map(async (flag) => (await run('soxi', [flag, path])).stdout.trim()),
    );
    return { rate: Number(rate), channels: Number(channels), bits: Number(bits), seconds: Number(seconds), encoding };
  };
  const cases = [
    { rate: 8000, channels: 1, bits: 16, encoding: /Signed Integer/ },
    { rate: 44100, channels: 2, bits: 24, encoding: /Signed Integer/ },
    { rate: 48000, channels: 2, bits: 32, float: true, encoding: /Floating Point/ },
  ] as const;
  for (const c of cases) {
    const info = await soxi(await wavVariant(f, c), `v${c.rate}.wav`);
    t.match(info, { rate: c.rate, channels: c.channels, bits: c.bits, encoding: c.encoding }, `${c.rate} Hz ${c.channels} ch ${c.bits} bit`);
    t.ok(Math.abs(info.seconds * 1000 - f.durationMs) < 5, `duration ${info.seconds} s`);
  }
  const mp3 = await mp3Of(f);
  t.equal(mp3[0], 0xff, 'starts with an MPEG frame sync (no ID3 tag)');
  const info = await soxi(mp3, 'speech.mp3');
  t.match(info, { rate: 16000, channels: 1, encoding: /MPEG audio/ });
  t.ok(Math.abs(info.seconds * 1000 - f.durationMs) < 150, `mp3 lasts ${info.seconds} s for ${f.durationMs} ms`);
  await t.rejects(wavVariant(f, { rate: 16000, channels: 1, bits: 16, float: true }), RangeError);
});

t.test('concurrent generation by separate processes is safe', async (t) => {
  const dir = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/generated/speech');
  const mine = (name: string) => name.startsWith('4242-1-');
  const clear = async () => {
    for (const name of (await readdir(dir).catch(() => [])).filter(mine)) await rm(join(dir, name), { force: true });
  };
  await clear();
  const child = `
    const { speechFixture } = await import(${JSON.stringify(new URL('../fixtures/speech.ts', import.meta.url).href)});
    const f = await speechFixture(4242, { sentences: 1 });
    const { createHash } = await import('node:crypto');
    console.log(createHash('sha1').update(f.samples16k).update(Buffer.concat(f.opusPackets)).update(f.pcm24k).digest('hex'));`;
  const runs = await Promise.all([0, 1, 2].map(() => run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child])));
  const digests = runs.map((r) => r.stdout.trim());
  t.match(digests[0], /^[0-9a-f]{40}$/);
  t.same(new Set(digests).size, 1, 'every process sees the same fixture');
  const names = (await readdir(dir)).filter(mine);
  t.same(names.filter((n) => n.includes('.tmp')), [], 'no temporary files left');
  t.equal(names.length, 4, 'wav, opus, 24k pcm and manifest');
});
