/**
 * The real binary: SIGTERM drains (running turn finishes, sockets close with 1001, exit 0;
 * past --drain-timeout-ms a running turn is cancelled, on every door; no new connections),
 * and API keys never reach the logs, even at trace level.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';
import { RealtimeClient } from '../realtime/helpers.js';
import { TestClient } from '../helpers/native-client.js';
import { compiledFile } from '../helpers/compiled.js';
import { TRANSPORTS } from '../helpers/transports.js';
import { spawnServer } from './spawn.js';
import { handshake } from './upgrade-client.js';
import { until } from '../helpers/until.js';

const SECRET = 'sk-earshot-never-log-this-0123456789';

for (const transport of TRANSPORTS) {
  t.test(`SIGTERM drains gracefully over ${transport}`, async (t) => {
    const server = await spawnServer(['--transport', transport, '--echo-token-delay-ms', '60']);
    t.teardown(() => server.child.kill('SIGKILL'));
    const wsUrl = `${server.url.replace(/^http/, 'ws')}/v1/stream`;
    const talking = await TestClient.connect(wsUrl);
    await talking.hello({ codec: 'pcm16', sampleRate: 16000 });
    const listening = await TestClient.connect(wsUrl);
    await listening.hello({ codec: 'pcm16', sampleRate: 16000 });
    talking.send({ type: 'text', text: 'a reply that is still streaming' });
    await talking.waitFor((m) => m.type === 'delta');
    const exited = once(server.child, 'exit');
    server.child.kill('SIGTERM');
    const done = await talking.waitFor((m) => m.type === 'done');
    t.match(done, { finish: 'stop' }, 'the turn in flight finished');
    t.match(talking.turns()[0]!.text, /^Echo test engine, turn 1: .*\.$/, 'with its whole reply');
    t.equal(await talking.waitForClose(), 1001, 'then its socket closed with 1001');
    t.equal(await listening.waitForClose(), 1001, 'an idle socket closed with 1001 too');
    t.match(listening.messages.at(-1), { type: 'error', code: 'shutting_down', fatal: true }, 'after being told why');
    const [code] = (await exited) as [number | null];
    t.equal(code, 0, 'exit code 0');
  });
}

t.test('Ctrl-C signals the whole process group: the reply being spoken finishes with its voice, then the server exits 0', { skip: process.platform === 'win32' && 'process groups' }, async (t) => {
  const server = await spawnServer(['--echo-token-delay-ms', '40'], { detached: true });
  t.teardown(() => server.child.kill('SIGKILL'));
  const client = await TestClient.connect(`${server.url.replace(/^http/, 'ws')}/v1/stream`);
  await client.hello({ codec: 'pcm16', sampleRate: 16000, voice: { codec: 'pcm16', raw: false } });
  client.send({ type: 'text', text: 'Good morning. Please open the window.' });
  await client.waitFor((m) => m.type === 'audio');
  const exited = once(server.child, 'exit');
  // As a terminal's Ctrl-C: SIGINT to every process of the group, the synthesis processes included.
  process.kill(-server.child.pid!, 'SIGINT');
  const done = await client.waitFor((m) => m.type === 'done');
  t.match(done, { finish: 'stop' }, 'the turn finished');
  t.notOk(client.messages.some((m) => m.type === 'error' && m.code === 'voice_error'), 'and its voice did not fail');
  const [code] = (await exited) as [number | null];
  t.equal(code, 0, 'exit code 0');
  t.notMatch(server.stderr(), /flite process exited/, 'no synthesis process died under the server');
});

t.test('past --drain-timeout-ms running turns are cancelled, every door says why, new connections are refused', async (t) => {
  // 400 ms per word: the reply cannot finish within the 600 ms drain.
  const server = await spawnServer(['--echo-token-delay-ms', '400', '--drain-timeout-ms', '600']);
  t.teardown(() => server.child.kill('SIGKILL'));
  const wsUrl = server.url.replace(/^http/, 'ws');
  const native = await TestClient.connect(`${wsUrl}/v1/stream`);
  await native.hello({ codec: 'pcm16', sampleRate: 16000 });
  const realtime = await RealtimeClient.connect(`${wsUrl}/v1/realtime`);
  await realtime.waitForType('session.created');
  native.send({ type: 'text', text: 'a very long answer please' });
  realtime.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'and another one' }] } });
  realtime.send({ type: 'response.create' });
  await native.waitFor((m) => m.type === 'delta');
  // The server has a voice, so the reply may be spoken: its transcript deltas count as the reply running.
  await realtime.waitFor((e) => e.type === 'response.output_text.delta' || e.type === 'response.output_audio_transcript.delta');
  const exited = once(server.child, 'exit');
  server.child.kill('SIGTERM');
  const probe = () => fetch(`${server.url}/health`).then((r) => r.status, (err: Error) => (err.cause as { code?: string } | undefined)?.code ?? err.message);
  // The child stops accepting once it has handled the signal, which a loaded machine may delay; the drain itself lasts as long as the long answer.
  let late = await probe();
  for (let tries = 0; late === 200 && tries < 200; tries++) {
    await new Promise((r) => setTimeout(r, 50));
    late = await probe();
  }
  t.equal(late, 'ECONNREFUSED', 'a new connection during the drain is refused');
  const done = await native.waitFor((m) => m.type === 'done' || (m.type === 'error' && m.code === 'shutting_down'));
  t.ok(done.type === 'error' || (done.type === 'done' && done.finish === 'cancelled'), `the native turn was cut short (${JSON.stringify(done)})`);
  t.equal(await native.waitForClose(), 1001, 'the native socket closed with 1001');
  t.match(await realtime.waitFor((e) => e.type === 'error' && e.error.code === 'shutting_down'), { error: { code: 'shutting_down' } }, 'the Realtime client is told why');
  await until(() => realtime.closeCode !== undefined);
  t.equal(realtime.closeCode, 1001, 'and closed with 1001');
  const [code] = (await exited) as [number | null];
  t.equal(code, 0, 'exit code 0');
});

t.test('API keys never appear in logs', async (t) => {
  const server = await spawnServer(['--api-keys', `${SECRET},second-key`, '--log-level', 'trace']);
  t.teardown(() => server.child.kill('SIGKILL'));
  const wsUrl = server.url.replace(/^http/, 'ws');
  await fetch(`${server.url}/v1/models`, { headers: { authorization: `Bearer ${SECRET}` } });
  await fetch(`${server.url}/v1/models`, { headers: { authorization: `Bearer ${SECRET}x` } });
  await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' }, body: '{"model": 1}' });
  const byQuery = await TestClient.connect(`${wsUrl}/v1/stream?token=${SECRET}`);
  await byQuery.hello({ codec: 'pcm16', sampleRate: 16000 });
  byQuery.send({ type: 'text', text: 'hi' });
  await byQuery.waitFor((m) => m.type === 'done');
  const byHello = await TestClient.connect(`${wsUrl}/v1/stream`);
  await byHello.hello({ codec: 'pcm16', sampleRate: 16000, token: SECRET });
  const wrong = await TestClient.connect(`${wsUrl}/v1/stream`);
  wrong.send({ type: 'hello', codec: 'pcm16', sampleRate: 16000, token: `${SECRET}-wrong` });
  await wrong.waitForClose();
  const realtime = await handshake(`${wsUrl}/v1/realtime`, {}, ['realtime', `openai-insecure-api-key.${SECRET}`]);
  if (realtime.ok) realtime.socket.close();
  byQuery.close();
  byHello.close();
  const exited = once(server.child, 'exit');
  server.child.kill('SIGTERM');
  await exited;
  const logs = server.stderr();
  t.ok(logs.split('\n').filter(Boolean).length > 3, 'the server logged (trace level)');
  t.notOk(logs.includes(SECRET), 'no key in any log line');
  t.notOk(logs.includes('second-key'), 'not even keys nobody used');
});

t.test('the logger redacts key fields wherever a caller puts them', async (t) => {
  const log = pathToFileURL(await compiledFile('server', 'observability', 'log.js')).href;
  const script = `import { createLogger } from '${log}';
const log = createLogger('info');
log.info({ token: '${SECRET}', apiKeys: ['${SECRET}'], config: { apiKeys: ['${SECRET}'], upstreamKey: '${SECRET}' }, hello: { token: '${SECRET}' }, headers: { authorization: 'Bearer ${SECRET}' } }, 'probe');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await once(child, 'exit');
  t.match(out, /"msg":"probe"/, 'the line was written');
  t.notOk(out.includes(SECRET), 'with every key redacted');
});
