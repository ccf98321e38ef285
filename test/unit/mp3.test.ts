import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { decodeClip } from '../../server/audio/clip.js';
import { decodeMp3 } from '../../server/audio/mp3.js';
import { mp3Of, speechFixture } from '../fixtures/speech.js';
import { correlation } from '../helpers/signal.js';

const run = promisify(execFile);
const dir = await mkdtemp(join(tmpdir(), 'earshot-mp3-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const fixture = await speechFixture(1);

async function soxTo16k(path: string): Promise<Float32Array> {
  const { stdout } = await run('sox', ['-D', path, '-r', '16000', '-c', '1', '-e', 'floating-point', '-b', '32', '-t', 'raw', '-'], { encoding: 'buffer', maxBuffer: 64 << 20 });
  return new Float32Array(stdout.buffer.slice(stdout.byteOffset, stdout.byteOffset + stdout.length));
}

t.test('16 kHz mono MP3 by lame: duration and samples match the source', async (t) => {
  const mp3 = await mp3Of(fixture);
  const decoded = await decodeMp3(mp3);
  t.equal(decoded.sampleRate, 16000);
  const durationMs = (decoded.channels[0]!.length / decoded.sampleRate) * 1000;
  t.ok(Math.abs(durationMs - fixture.durationMs) <= 20, `decoded ${durationMs} ms, source ${fixture.durationMs} ms`);
  const clip = await decodeClip(mp3, 'mp3');
  t.ok(correlation(clip, fixture.samples16k) > 0.95, 'the decode lines up with the source (gapless: no encoder delay)');
});

t.test('stereo 44.1 kHz MP3: downmixed, resampled to 16 kHz, matches sox', async (t) => {
  const wav = join(dir, 'stereo.wav');
  const mp3Path = join(dir, 'stereo.mp3');
  await run('sox', ['-D', fixture.wav16kPath, '-r', '44100', '-c', '2', wav]);
  await run('lame', ['--quiet', '-b', '128', wav, mp3Path]);
  const mp3 = await readFile(mp3Path);
  const decoded = await decodeMp3(mp3);
  t.equal(decoded.sampleRate, 44100);
  t.equal(decoded.channels.length, 2);
  const durationMs = (decoded.channels[0]!.length / 44100) * 1000;
  t.ok(Math.abs(durationMs - fixture.durationMs) <= 20, `decoded ${durationMs.toFixed(1)} ms, source ${fixture.durationMs} ms`);
  const clip = await decodeClip(mp3, 'mp3');
  t.ok(Math.abs(clip.length / 16 - fixture.durationMs) <= 20, `16 kHz clip lasts ${clip.length / 16} ms`);
  // sox reads MP3 through libmad without trimming the encoder delay, so compare with sox's 16 kHz conversion of what lame was given.
  const r = correlation(clip, await soxTo16k(wav));
  t.ok(r > 0.95, `correlation with sox's 16 kHz conversion of the encoded WAV ${r.toFixed(4)}`);
  t.ok(correlation(clip, fixture.samples16k) > 0.95, 'and with the source');
});

t.test('garbage and truncated MP3s throw bad_audio', async (t) => {
  const mp3 = await mp3Of(fixture);
  const garbagePath = join(dir, 'garbage.mp3');
  await writeFile(garbagePath, 'not an mp3 '.repeat(100));
  await t.rejects(decodeMp3(await readFile(garbagePath)), { name: 'EarshotError', code: 'bad_audio', message: /no MPEG audio/ });
  await t.rejects(decodeMp3(new Uint8Array(0)), { code: 'bad_audio' });
  await t.rejects(decodeMp3(mp3.subarray(0, 100)), { code: 'bad_audio' }, 'cut inside the first frame');
  await t.rejects(decodeClip(mp3.subarray(0, 100), 'mp3'), { code: 'bad_audio' });
});
