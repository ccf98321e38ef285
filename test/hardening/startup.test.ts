/**
 * Start-up failures an operator meets first: a port already in use is refused (not shared,
 * as uSockets would by default), and TLS files that do not load are named, on both transports.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compiledFile } from '../helpers/compiled.js';
import { startTestServer, TRANSPORTS } from '../helpers/server.js';
import { selfSignedCert } from '../helpers/tls.js';

const tls = await selfSignedCert();
t.teardown(tls.dispose);

/** Runs `server/main.ts` (compiled, as spawn.ts does) to its exit, as an operator would; returns its exit code and stderr. */
async function runToExit(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const main = await compiledFile('server', 'main.js');
  const child = spawn(process.execPath, [main, '--engine', 'echo', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stderr };
}

for (const transport of TRANSPORTS) {
  t.test(`${transport}: a second server on a port in use is refused with EADDRINUSE`, async (t) => {
    const first = await startTestServer({ transport, apiKeys: ['only-the-first-has-keys'] });
    t.teardown(() => first.close(0));
    const second = startTestServer({ transport, port: first.port });
    await t.rejects(second, { code: 'EADDRINUSE', message: /EADDRINUSE.*address already in use/ }, 'in process: the listen rejects with the reason');
    const statuses = await Promise.all(Array.from({ length: 10 }, () => fetch(`${first.url}/v1/models`).then((r) => r.status)));
    t.same(statuses, Array(10).fill(401), 'every request reached the first server (it wants a key)');
    const binary = await runToExit(['--transport', transport, '--port', String(first.port)]);
    t.equal(binary.code, 1, 'the binary exits with code 1');
    t.match(binary.stderr, `earshot: failed to start: listen EADDRINUSE: address already in use 127.0.0.1:${first.port}`, 'saying why');
    t.notMatch(binary.stderr, /earshot listening/, 'and never claims to listen');
  });

  t.test(`${transport}: TLS files that do not load are named`, async (t) => {
    const missing = join(tls.cert, '..', 'missing-cert.pem');
    await t.rejects(startTestServer({ transport, tlsCert: missing, tlsKey: tls.key }), { code: 'ENOENT', message: new RegExp(`no such file.*${missing}`) }, 'a missing certificate');
    const missingKey = join(tls.cert, '..', 'missing-key.pem');
    await t.rejects(startTestServer({ transport, tlsCert: tls.cert, tlsKey: missingKey }), { message: new RegExp(missingKey) }, 'a missing key');
    // Checked before any model loads: a model that would fail too is never reached.
    await t.rejects(startTestServer({ transport, tlsCert: missing, tlsKey: tls.key, vadModel: join(tls.cert, '..', 'no-model.onnx') }), { message: new RegExp(missing) }, 'before the VAD model');
    const garbage = join(tls.cert, '..', 'garbage.pem');
    await writeFile(garbage, 'not a certificate');
    await t.rejects(startTestServer({ transport, tlsCert: garbage, tlsKey: tls.key }), { message: transport === 'uws' ? new RegExp(garbage) : /PEM|certificate|key/i }, 'a file that is not PEM');
    if (transport === 'ws') return;
    const binary = await runToExit(['--transport', transport, '--port', '0', '--tls-cert', missing, '--tls-key', tls.key]);
    t.equal(binary.code, 1, 'the binary exits with code 1');
    t.match(binary.stderr, `earshot: failed to start: ENOENT: no such file or directory`, 'saying which file');
    t.match(binary.stderr, missing);
    t.notMatch(binary.stderr, /App construction failed/);
  });
}
