/** A test labelled uws must not pass on the ws fallback: with every uWebSockets.js build hidden, asking for uws fails. */
import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { UWS_BUILDS } from '../../server/transport/uws.js';

const hideUws = `import Module from 'node:module';
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (${JSON.stringify(UWS_BUILDS)}.includes(request)) throw new Error('hidden by the test: ' + request);
  return resolve.call(this, request, ...rest);
};`;

/** Runs `script` in a child whose processes (and their children, through NODE_OPTIONS) cannot load uWS. */
async function run(script: string): Promise<string> {
  const env = { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=data:text/javascript,${encodeURIComponent(hideUws)}` };
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await once(child, 'exit');
  return out;
}

t.test('startTestServer({transport: uws}) fails when no uWebSockets.js build loads', async (t) => {
  const helper = new URL('../helpers/server.ts', import.meta.url).href;
  const out = await run(`const { startTestServer } = await import(${JSON.stringify(helper)});
const fallback = await startTestServer({ transport: 'ws' });
console.log('ws runs:', fallback.transport.name);
await fallback.close(0);
await startTestServer({ transport: 'uws' }).then((s) => console.log('started on', s.transport.name), (e) => console.log('refused:', e.message));`);
  t.match(out, 'ws runs: ws', 'the hidden builds leave the ws transport working');
  t.match(out, 'refused: asked for the uws transport but ws runs', 'a uws test server refuses to run on ws');
  t.notMatch(out, 'started on');
});

t.test('spawnServer with --transport uws fails when no uWebSockets.js build loads', async (t) => {
  const helper = new URL('../hardening/spawn.ts', import.meta.url).href;
  const out = await run(`const { spawnServer } = await import(${JSON.stringify(helper)});
await spawnServer(['--transport', 'uws']).then((s) => { console.log('started on', s.url); s.child.kill(); }, (e) => console.log('refused:', e.message));`);
  t.match(out, 'refused: asked for the uws transport but ws runs');
});
