/**
 * Loading the model where a user can watch it: download progress from the real worker.py (with
 * the stand-in mlx_vlm and huggingface_hub from test/fixtures), the stall timer it resets, and
 * `npm run fetch-model`. Timeouts here are generous: only a stall longer than them may fail.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import t from 'tap';
import type { EarshotError } from '../../protocol/errors.js';
import { MlxEngine } from '../../server/engines/mlx/pool.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURES = join(ROOT, 'test', 'fixtures');
const PYTHON = '/usr/bin/python3';
const STALL_MS = 6_000;
// Eight steps of 1 s (the worker reports progress at most once a second, so a step is no
// shorter): the whole download takes longer than the stall timeout, no step comes near it.
const DOWNLOAD = { STANDIN_DOWNLOAD_BYTES: '3000000000', STANDIN_DOWNLOAD_STEPS: '8', STANDIN_DOWNLOAD_STEP_MS: '1000' };

function engine(t: { teardown(fn: () => unknown): void }, env: Record<string, string>): MlxEngine {
  const created = MlxEngine.create({
    model: 'standin/gemma',
    workers: 1,
    python: PYTHON,
    readyTimeoutMs: STALL_MS,
    pingIntervalMs: 100,
    hangTimeoutMs: 2000,
    env: { PYTHONPATH: FIXTURES, ...env },
    logger: pino({ level: 'silent' }),
  });
  t.teardown(() => created.close());
  return created;
}

// At once, each with its own worker process: they wait on the stand-in download's sleeps, not on the CPU.
t.test('loading', { jobs: 3 }, async (t) => {
  t.test('a download that keeps moving outlives the stall timeout', async (t) => {
    const moving = engine(t, DOWNLOAD);
    const started = performance.now();
    const seen: number[] = [];
    const watch = setInterval(() => {
      const percent = moving.loading()?.percent;
      if (percent !== undefined && seen.at(-1) !== percent) seen.push(percent);
    }, 50);
    await moving.ready.finally(() => clearInterval(watch));
    t.ok(performance.now() - started > STALL_MS, 'the download took longer than the stall timeout');
    t.ok(seen.length >= 5 && seen.every((p, i) => i === 0 || p > seen[i - 1]!), `progress rose step by step: ${seen.join(', ')}`);
    t.equal(moving.capacity(), 8);
    t.equal(moving.loading(), undefined, 'nothing to report once ready');
    t.same(moving.status()[0]!.probe, { textOnly: { bos: 1, bosFirst: true }, withAudio: { bos: 1, bosFirst: true, audioTokensPerSecond: 25 } });
  });

  t.test('a download that stops is killed after the stall timeout, and says where it stopped', async (t) => {
    const stalled = engine(t, { ...DOWNLOAD, STANDIN_DOWNLOAD_STALL_AT: '4' });
    const err = await stalled.ready.then(
      () => undefined,
      (e: unknown) => e as EarshotError,
    );
    t.equal(err?.code, 'engine_unavailable');
    t.match(err?.message, new RegExp(`no loading progress for ${STALL_MS} ms`));
    t.match(stalled.status()[0]!.loading, { stage: 'download', percent: 50, doneBytes: 1_500_000_000, totalBytes: 3_000_000_000 }, 'it stopped half way');
  });

  t.test('npm run fetch-model downloads ahead of time with progress; a failure names the reason', async (t) => {
    const env = { ...process.env, PYTHONPATH: FIXTURES, STANDIN_DOWNLOAD_BYTES: '2000000000', STANDIN_DOWNLOAD_STEPS: '2', STANDIN_DOWNLOAD_STEP_MS: '200' };
    const { stderr } = await promisify(execFile)('npm', ['run', '-s', 'fetch-model', '--', '--python', PYTHON, '--mlx-model', 'standin/gemma'], { cwd: ROOT, env });
    t.match(stderr, /downloading standin\/gemma: 50\.0% \(1\.00 of 2\.00 GB\)\ndownloading standin\/gemma: 100\.0% \(2\.00 of 2\.00 GB\)\nstandin\/gemma is in /);
    // The script it runs, directly: an unknown repo exits 1 with the hub's reason.
    const failed = await promisify(execFile)(PYTHON, ['server/engines/mlx/download.py', 'standin/missing'], { cwd: ROOT, env }).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    t.equal(failed?.code, 1);
    t.match(failed?.stderr, /could not fetch standin\/missing: RepositoryNotFoundError: 404/);
  });
});
