/** `import ... from 'earshot/client'` as another project does it: by package name, under plain node, against a real server; and the README's example as written. */
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as api from '../../clients/node/index.js';
import { startTestServer } from '../helpers/server.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCRIPT = `
import * as api from 'earshot/client';
const client = new api.EarshotClient({ url: process.argv[2], codec: 'pcm16', sampleRate: 16000 });
await client.connect();
client.text('hello from another project');
for await (const turn of client.turns()) {
  let text = '';
  for await (const piece of turn.deltas()) text += piece;
  const { finish } = await turn.done;
  console.log(JSON.stringify({ exports: Object.keys(api).sort(), text, finish }));
  break;
}
client.close();
`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `script` as an ES module of a fresh project whose node_modules/earshot links this checkout (what `npm install /path/to/earshot` makes). */
async function runInProject(t: Test, script: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const project = await mkdtemp(join(tmpdir(), 'earshot-user-'));
  t.teardown(() => rm(project, { recursive: true, force: true }));
  await mkdir(join(project, 'node_modules'));
  await symlink(ROOT, join(project, 'node_modules', 'earshot'), 'dir');
  await writeFile(join(project, 'use.mjs'), script);
  return new Promise((resolve) => {
    // A bare environment: no tsx loader inherited from the test runner.
    execFile(process.execPath, ['use.mjs', ...args], { cwd: project, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

t.test('a project that depends on earshot imports the client library under plain node', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.close(0));
  const out = await runInProject(t, SCRIPT, [`${server.wsUrl}/v1/stream`]);
  t.equal(out.code, 0, out.stderr);
  const result = JSON.parse(out.stdout.trim()) as { exports: string[]; text: string; finish: string };
  const runtime = Object.keys(api).filter((name) => (api as Record<string, unknown>)[name] !== undefined).sort();
  t.same(result.exports, runtime, 'the package entry exports every runtime export of clients/node/index.ts');
  t.match(result.text, /^Echo test engine, turn 1: heard no audio and read "hello from another project"\.$/, 'a whole turn through the library');
  t.equal(result.finish, 'stop');
});

t.test("the README's Node library example runs as written, prints whole lines and exits by itself", async (t) => {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('**Node library**'));
  const example = /```js\n([\s\S]*?)```/.exec(section)?.[1];
  if (!example) throw new Error('README: no js block after **Node library**');
  const server = await startTestServer({ apiKeys: ['readme-key'] });
  t.teardown(() => server.close(0));
  const out = await runInProject(t, example, [], { EARSHOT_URL: server.url, EARSHOT_API_KEY: 'readme-key' });
  t.equal(out.code, 0, `exits 0 on its own before the 30 s timeout: ${out.stderr}`);
  t.match(out.stdout, /^Echo test engine, turn 1: heard no audio and read "hello"\.\n\[stop\]\n$/, 'the reply and its finish, each ending its line');
});
