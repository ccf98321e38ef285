/**
 * `npm run doctor` as a user runs it: without mlx_vlm it says what it cannot check; against the
 * stand-in mlx_vlm (test/fixtures, through PYTHONPATH in the child's environment only) every
 * mechanical check runs through the real worker pool, and the check that needs a model that
 * hears words fails, as it must for a model that does not.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { CHECK_NAMES } from '../../doctor/checks.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURES = join(ROOT, 'test', 'fixtures');

/**
 * The stand-in prefills in one step by default, so the doctor's cancel 50 ms into a prefill would
 * land during decode or after the end, by the machine's luck. 40 steps of 5 ms give it a prefill
 * to land in, as a real model's prefill of two 30 s clips does.
 */
const PREFILL_TAKES_TIME = { STANDIN_PREFILL_STEPS: '40', STANDIN_TOKEN_DELAY_MS: '5' };

async function doctor(t: { teardown(fn: () => unknown): void }, pythonPath: string): Promise<{ code: number; report: string; stdout: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'earshot-doctor-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'report.md');
  const args = ['--import', 'tsx', 'doctor/run.ts', '--report', path, '--python', '/usr/bin/python3', '--mlx-model', 'standin/gemma', '--log-level', 'warn'];
  const code = await new Promise<{ code: number; stdout: string }>((resolve) => {
    execFile(process.execPath, args, { cwd: ROOT, env: { ...process.env, PYTHONPATH: pythonPath, ...PREFILL_TAKES_TIME } }, (err, stdout) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout }),
    );
  });
  return { ...code, report: await readFile(path, 'utf8') };
}

function rows(report: string): Map<string, string[]> {
  const table = report.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| check '));
  return new Map(table.map((line) => line.split(' | ').map((cell) => cell.replace(/^\| | \|$/g, ''))).map(([name, ...rest]) => [name!, rest]));
}

t.test('without mlx_vlm: every check is reported as not checked, with the reason, exit 2', async (t) => {
  const { code, report, stdout } = await doctor(t, '');
  t.equal(code, 2);
  t.match(report, /- mlx_vlm: NOT IMPORTABLE by \/usr\/bin\/python3: ModuleNotFoundError: No module named 'mlx_vlm'/);
  t.match(report, /python 3\.\d+/);
  const checks = rows(report);
  t.same([...checks.keys()], CHECK_NAMES);
  for (const [name, [result]] of checks) t.equal(result, 'NOT CHECKED', name);
  t.match(stdout, /report written to /);
});

t.test('against the stand-in: the mechanics pass, the words check fails, exit 1', async (t) => {
  const { code, report } = await doctor(t, FIXTURES);
  t.equal(code, 1);
  t.match(report, /- mlx_vlm: 0\.6\.15\+standin from .*test\/fixtures\/mlx_vlm\/__init__\.py/);
  t.match(report, /- model: standin\/gemma/);
  const checks = rows(report);
  const result = (name: string) => checks.get(name)?.[0];
  const needsWords = 'a known spoken clip is answered with its words';
  for (const name of CHECK_NAMES.filter((n) => ![needsWords, 'decode speed', 'peak memory'].includes(n)))
    t.equal(result(name), 'PASS', `${name}: ${checks.get(name)?.[1]}`);
  t.equal(result(needsWords), 'FAIL', 'the stand-in hears durations, not words');
  t.match(checks.get('audio tokens = ceil(ms / 40)')?.[1], /expected 86, 40, 120, got 86, 40, 120/);
  t.match(checks.get('decode speed')?.[1], /one stream: [\d.]+ tokens\/s .* 8 streams together: [\d.]+ tokens\/s/);
  t.equal(checks.get('peak memory')?.[1], 'not reported (the worker could not import mlx.core)');
});
