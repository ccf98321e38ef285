/**
 * The log an operator reads: at the default level, one line per turn (session, door, audio ms,
 * queue ms, first text ms, tokens, finish) and one per error, as JSON lines when stderr is not a
 * terminal and as pino-pretty text when it is.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';
import { compiledFile } from '../helpers/compiled.js';
import { TestClient } from '../helpers/native-client.js';
import { speechFixture } from '../fixtures/speech.js';
import { spawnServer } from './spawn.js';

type LogLine = Record<string, unknown> & { msg: string; level: number };

t.test('the default level logs every turn and every error as a JSON line', async (t) => {
  const server = await spawnServer(['--echo-token-delay-ms', '1']);
  t.teardown(() => server.child.kill('SIGKILL'));
  const fixture = await speechFixture(3, { sentences: 1 });
  const pcm = Int16Array.from(fixture.samples16k, (x) => Math.round(x * 32767));
  const client = await TestClient.connect(`${server.url.replace(/^http/, 'ws')}/v1/stream`);
  const ready = await client.hello({ codec: 'pcm16', sampleRate: 16000, vad: { enabled: false } });
  const bytes = new Uint8Array(pcm.buffer);
  for (let at = 0; at < bytes.length; at += 640) client.sendAudio(bytes.subarray(at, at + 640));
  client.send({ type: 'commit' });
  const [turn] = await client.waitForTurnsDone(1);
  client.send({ type: 'no-such-message' });
  await client.waitFor((m) => m.type === 'error');
  const rest = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }) });
  t.equal(rest.status, 200);
  await rest.text();
  client.close();
  const exited = once(server.child, 'exit');
  server.child.kill('SIGTERM');
  await exited;

  const lines = server.stderr().split('\n').filter(Boolean);
  const parsed = lines.map((line) => JSON.parse(line) as LogLine);
  t.equal(parsed.length, lines.length, 'every line is JSON');
  const turns = parsed.filter((l) => l.msg === 'turn');
  t.equal(turns.length, 2, 'one line per turn');
  const native = turns.find((l) => l.door === 'native');
  t.match(native, { session: ready.sessionId, turn: turn!.turnId, audioMs: turn!.audioMs, finish: 'stop', completionTokens: Number, promptTokens: Number }, 'the native turn: session, audio, tokens, finish');
  t.ok(typeof native?.queueMs === 'number' && typeof native.firstTextMs === 'number' && native.firstTextMs >= native.queueMs, `with queue and first-text times (${native?.queueMs}, ${native?.firstTextMs} ms)`);
  t.ok((native?.completionTokens as number) > 0, 'and the tokens it produced');
  t.match(turns.find((l) => l.door === 'rest'), { audioMs: 0, finish: 'stop' }, 'the REST turn too');
  t.match(parsed.filter((l) => l.msg === 'error sent'), [{ door: 'native', session: ready.sessionId, code: 'bad_message', level: 40 }], 'one line for the error the client was sent');
});

/** Runs a script that logs one line through createLogger, with stderr on a pipe or (through `script`) a terminal. */
async function logOnce(terminal: boolean): Promise<string> {
  const log = pathToFileURL(await compiledFile('server', 'observability', 'log.js')).href;
  const code = `import { createLogger } from '${log}'; createLogger('info').info({ session: 's-42', door: 'native' }, 'turn');`;
  const node = [process.execPath, '--input-type=module', '-e', code];
  const quoted = node.map((arg) => `'${arg.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = terminal ? spawn('script', ['-qec', `${quoted} 2>&1`, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] }) : spawn(node[0]!, node.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await once(child, 'exit');
  return out;
}

t.test('human-readable on a terminal, JSON otherwise', async (t) => {
  const piped = await logOnce(false);
  t.match(JSON.parse(piped.trim()), { msg: 'turn', session: 's-42', door: 'native' }, 'a pipe gets a JSON line');
  // Colours are on at a terminal: drop them to read the text.
  const tty = (await logOnce(true)).replace(/\u001b\[\d+m/g, '');
  t.match(tty, /INFO.*turn/, 'a terminal gets the level and the message as text');
  t.match(tty, /session: "s-42"/, 'and the fields, one per line');
  t.notMatch(tty, /"msg":/, 'not JSON');
});
