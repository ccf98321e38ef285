/**
 * The earshot CLI as users run it, under plain node against a real server: the bin shim (which
 * loads the TypeScript through tsx) for the first run and --help, and for the other runs the
 * same sources compiled once (test/helpers/bundle.ts), which start ~1 s of CPU sooner each.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ServerMessage } from '../../protocol/native.js';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { mp3Of, speechFixture } from '../fixtures/speech.js';
import { bundle } from '../helpers/bundle.js';
import { burstProxy } from '../helpers/burst-proxy.js';
import { freePort, startTestServer } from '../helpers/server.js';

const SHIM = fileURLToPath(new URL('../../clients/node/bin/earshot.js', import.meta.url));
const cli = await bundle(new URL('../../clients/node/cli.ts', import.meta.url));
t.teardown(() => cli.remove());

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function earshot(args: string[], stdin?: Buffer, env: NodeJS.ProcessEnv = {}, bin = cli.path): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [bin, ...args], { timeout: 60_000, env: { ...process.env, EARSHOT_URL: '', EARSHOT_API_KEY: '', EARSHOT_TOKEN: '', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
    if (stdin) child.stdin!.end(stdin);
  });
}

// coalesce off: --fast delivers every sentence while the first reply still streams, and the
// server would otherwise answer the later ones together.
const server = await startTestServer({ coalesce: false });
t.teardown(() => server.close(0));
const url = `${server.wsUrl}/v1/stream`;
const fixture = await speechFixture(1);

t.test('--fast --json streams a WAV: one reply per sentence, every line is JSON, exit 0', async (t) => {
  const run = await earshot(['--url', url, '--fast', '--json', fixture.wav16kPath], undefined, {}, SHIM);
  t.equal(run.code, 0, run.stderr);
  const events = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as ServerMessage);
  t.equal(events[0]?.type, 'ready');
  const turns = events.filter((e) => e.type === 'turn');
  const done = events.filter((e): e is Extract<ServerMessage, { type: 'done' }> => e.type === 'done');
  t.equal(turns.length, fixture.truth.length, 'one turn per sentence');
  t.same(
    done.map((d) => d.finish),
    fixture.truth.map(() => 'stop'),
  );
  for (const turn of turns) {
    const text = events
      .filter((e): e is Extract<ServerMessage, { type: 'delta' }> => e.type === 'delta' && e.turnId === turn.turnId)
      .map((e) => e.text)
      .join('');
    t.match(text, /^Echo test engine, turn \d: heard \d+ ms of audio/);
    const heard = events.filter((e) => e.type === 'transcript' && e.turnId === turn.turnId) as Extract<ServerMessage, { type: 'transcript' }>[];
    t.equal(heard.length, 1, `one transcript for ${turn.turnId}, asked by default`);
    const seconds = Number(/^\[echo test transcript: (\d+\.\d+) s of audio/.exec(heard[0]?.text ?? '')?.[1]);
    t.ok(Math.abs(seconds * 1000 - turn.audioMs) <= 10, `the transcript is of this turn's clip (${seconds} s, ${turn.audioMs} ms)`);
  }
});

t.test('an Ogg Opus file in human mode prints each reply on its own line', async (t) => {
  const run = await earshot(['--url', url, '--fast', fixture.opusPath]);
  t.equal(run.code, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  t.equal(lines.length, fixture.truth.length);
  lines.forEach((line, i) => t.match(line, new RegExp(`^Echo test engine, turn ${i + 1}: heard \\d+ ms of audio`)));
  const said = run.stderr.split('\n').filter((line) => line.startsWith('  you said ('));
  t.equal(said.length, fixture.truth.length, "each spoken turn's words are shown");
  t.match(said[0], /^  you said \(\S+\): \[echo test transcript: \d+\.\d+ s of audio/);
  t.match(run.stderr, /engine echo \(TEST ENGINE/);
});

t.test('human mode prints one reply at a time when several replies arrive in one read', async (t) => {
  // After the first reply is announced, the proxy holds the rest of the stream, every reply
  // whole, and hands it over in one write: as a CLI on a busy machine reads it.
  const proxy = await burstProxy({ host: '127.0.0.1', port: Number(new URL(server.url).port) }, fixture.truth.length);
  t.teardown(() => proxy.close());
  const run = await earshot(['--url', `ws://127.0.0.1:${proxy.port}/v1/stream`, '--fast', fixture.opusPath]);
  t.equal(run.code, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  t.equal(lines.length, fixture.truth.length, 'one line per reply');
  lines.forEach((line, i) => t.match(line, new RegExp(`^Echo test engine, turn ${i + 1}: heard \\d+ ms of audio at rms [\\d.]+\\.$`), `reply ${i + 1} whole`));
  const announced = run.stderr.split('\n').filter((line) => line.startsWith('› turn'));
  t.equal(announced.length, fixture.truth.length, 'each reply announced once');
});

t.test('the WAV espeak-ng writes (22050 Hz) and an MP3 are taken as they are', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'earshot-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const question = join(dir, 'question.wav');
  await promisify(execFile)('espeak-ng', ['-w', question, 'What is the capital of France?']);
  const spoken = await earshot(['--url', url, '--fast', question]);
  t.equal(spoken.code, 0, spoken.stderr);
  t.match(spoken.stdout, /^Echo test engine, turn 1: heard \d+ ms of audio/);
  const mp3 = join(dir, 'speech.mp3');
  await writeFile(mp3, await mp3Of(fixture));
  const run = await earshot(['--url', url, '--fast', mp3]);
  t.equal(run.code, 0, run.stderr);
  t.equal(run.stdout.trim().split('\n').length, fixture.truth.length, 'one reply per sentence');
  const flac = join(dir, 'speech.flac');
  await writeFile(flac, 'fLaC and the rest');
  const refused = await earshot(['--url', url, flac]);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /FLAC files are not supported: earshot reads WAV.*MP3 and Ogg Opus/);
});

t.test('raw PCM16 from stdin with --pcm-rate', async (t) => {
  const pcm = Buffer.from(fixture.pcm24k.buffer, fixture.pcm24k.byteOffset, fixture.pcm24k.byteLength);
  const run = await earshot(['--url', url, '--fast', '--pcm-rate', '24000', '-'], pcm);
  t.equal(run.code, 0, run.stderr);
  t.equal(run.stdout.trim().split('\n').length, fixture.truth.length);
});

t.test('an unreachable server: a clear message and exit 2', async (t) => {
  const gone = `ws://127.0.0.1:${await freePort()}/v1/stream`;
  const run = await earshot(['--url', gone, '--text', 'hello']);
  t.equal(run.code, 2);
  t.match(run.stderr, `cannot reach ${gone}: ECONNREFUSED`);
});

t.test('usage errors exit 1', async (t) => {
  const none = await earshot([]);
  t.equal(none.code, 1);
  t.match(none.stderr, /give an audio file/);
  const stdinWithoutRate = await earshot(['--url', url, '-']);
  t.equal(stdinWithoutRate.code, 1);
  const missing = await earshot(['--url', url, `${fixture.wav16kPath.slice(0, -4)}.missing.wav`]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /ENOENT/);
});

// One server with an API key for the two tests of keys.
const guarded = await startTestServer({ apiKeys: ['sesame'] });
t.teardown(() => guarded.close(0));

t.test('a server error exits 3; --api-key gets past it', async (t) => {
  const guardedUrl = `${guarded.wsUrl}/v1/stream`;
  const refused = await earshot(['--url', guardedUrl, '--text', 'hi']);
  t.equal(refused.code, 3);
  t.match(refused.stderr, /unauthorized/);
  const allowed = await earshot(['--url', guardedUrl, '--api-key', 'sesame', '--text', 'hi']);
  t.equal(allowed.code, 0, allowed.stderr);
  t.match(allowed.stdout, /read "hi"/);
});

t.test('EARSHOT_URL and EARSHOT_API_KEY as the REST examples export them; old names still work', async (t) => {
  const rest = await earshot(['--text', 'hi'], undefined, { EARSHOT_URL: guarded.url, EARSHOT_API_KEY: 'sesame' });
  t.equal(rest.code, 0, rest.stderr);
  t.match(rest.stdout, /read "hi"/, 'an http base URL without a path finds /v1/stream');
  const v1 = await earshot(['--url', `${guarded.url}/v1`, '--api-key', 'sesame', '--text', 'hi']);
  t.equal(v1.code, 0, v1.stderr);
  const old = await earshot(['--text', 'hi'], undefined, { EARSHOT_URL: guarded.url, EARSHOT_TOKEN: 'sesame' });
  t.equal(old.code, 0, old.stderr);
  t.match(old.stderr, /EARSHOT_TOKEN is deprecated; use EARSHOT_API_KEY/);
  const bad = await earshot(['--text', 'hi'], undefined, { EARSHOT_URL: 'localhost:8080' });
  t.equal(bad.code, 1);
  t.match(bad.stderr, /EARSHOT_URL: 'localhost:8080' is not an http\(s\):\/\/ or ws\(s\):\/\/ URL/, 'a bad address names the variable');
});

t.test('--help: every option\'s text in one column, the longest option included', async (t) => {
  const run = await earshot(['--help'], undefined, {}, SHIM);
  t.equal(run.code, 0);
  const rows = run.stdout.slice(run.stdout.indexOf('Options:\n') + 9, run.stdout.indexOf('\n\n', run.stdout.indexOf('Options:'))).split('\n');
  t.ok(rows.length >= 8, 'the options are listed');
  const column = rows[0]!.search(/(?<=\S {2,})\S/);
  t.ok(column > 0);
  for (const row of rows) {
    if (row.startsWith('  -')) t.equal(row.search(/(?<=\S {2,})\S/), column, row.trim().split(/\s{2,}/)[0]!);
    else t.equal(row.search(/\S/), column, 'a continued description stays in the column');
  }
});

t.test('options the protocol refuses are usage errors, caught before connecting', async (t) => {
  const rate = await earshot(['--url', url, '--pcm-rate', '22050', '-'], Buffer.alloc(0));
  t.equal(rate.code, 1);
  t.match(rate.stderr, /22050 Hz is not supported/);
  const system = await earshot(['--url', url, '--system', 'x'.repeat(20_000), '--text', 'hi']);
  t.equal(system.code, 1);
  t.match(system.stderr, /system/);
});

t.test('--save-audio writes each reply as it was spoken to a WAV file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'earshot-voice-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const run = await earshot(['--url', url, '--text', 'Good morning.', '--save-audio', join(dir, 'out')]);
  t.equal(run.code, 0, run.stderr);
  const line = /voice of (\S+): (\S+\.wav) \((\d+\.\d) s, first audio after \d+ ms\)/.exec(run.stderr);
  t.ok(line, run.stderr);
  const wav = await readFile(line![2]!);
  t.equal(wav.subarray(0, 4).toString(), 'RIFF');
  t.equal(wav.readUInt32LE(24), 24000, '24 kHz');
  const samples = new Int16Array(wav.buffer.slice(wav.byteOffset + 44, wav.byteOffset + wav.length));
  t.ok(samples.length / 24000 > 1, `${(samples.length / 24000).toFixed(1)} s of audio`);
  t.ok(samples.some((s) => Math.abs(s) > 3000), 'not silence');
});
