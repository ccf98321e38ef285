/**
 * The real binary: SIGTERM drains (running turn finishes, sockets close with 1001, exit 0),
 * and API keys never reach the logs, even at trace level.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { TestClient } from '../helpers/native-client.js';
import { TRANSPORTS } from '../helpers/server.js';
import { spawnServer } from './spawn.js';
import { handshake } from './upgrade-client.js';

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
  const script = `import { createLogger } from './server/observability/log.ts';
const log = createLogger('info');
log.info({ token: '${SECRET}', apiKeys: ['${SECRET}'], config: { apiKeys: ['${SECRET}'], upstreamKey: '${SECRET}' }, hello: { token: '${SECRET}' }, headers: { authorization: 'Bearer ${SECRET}' } }, 'probe');`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await once(child, 'exit');
  t.match(out, /"msg":"probe"/, 'the line was written');
  t.notOk(out.includes(SECRET), 'with every key redacted');
});
