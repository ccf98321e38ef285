import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { helpText, parseConfig } from '../../server/config.js';
import { vadJudging } from '../../server/realtime/config.js';

t.test('flags beat env beat file beat defaults', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'earshot-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify({ port: 7000, maxBatch: 3, transport: 'ws' }));
  const config = parseConfig(['--config', file, '--port', '9000'], { EARSHOT_MAX_BATCH: '5', EARSHOT_API_KEYS: 'a, b' });
  t.equal(config.port, 9000);
  t.equal(config.maxBatch, 5);
  t.equal(config.transport, 'ws');
  t.same(config.apiKeys, ['a', 'b']);
  t.equal(config.host, '127.0.0.1', 'default host is loopback');
});

t.test('invalid configuration names the option', async (t) => {
  t.throws(() => parseConfig(['--port', 'eighty']), { message: /--port/ });
  t.throws(() => parseConfig(['--transport', 'carrier-pigeon']), { message: /--transport/ });
  t.throws(() => parseConfig(['--nope']), { name: 'ConfigError', message: /--nope/ });
  t.throws(() => parseConfig(['--tls-cert', 'x.pem']), { message: /tls-key/ });
  t.throws(() => parseConfig(['--engine', 'openai']), { message: /upstream-url/ });
  t.throws(() => parseConfig(['--host', '0.0.0.0']), { message: /--api-keys/ }, 'beyond loopback, keys are required by default');
  t.equal(parseConfig(['--host', '0.0.0.0', '--api-keys', 'k']).host, '0.0.0.0');
  t.equal(parseConfig(['--host', '0.0.0.0', '--allow-unauthenticated']).allowUnauthenticated, true);
});

t.test('the CLI exits 2 with a clear message on bad config, and --help lists options', async (t) => {
  const bad = spawnSync(process.execPath, ['--import', 'tsx', 'server/main.ts', '--port', 'x'], { encoding: 'utf8' });
  t.equal(bad.status, 2);
  t.match(bad.stderr, /invalid configuration[\s\S]*--port/);
  const help = spawnSync(process.execPath, ['--import', 'tsx', 'server/main.ts', '--help'], { encoding: 'utf8' });
  t.equal(help.status, 0);
  t.match(help.stdout, /--vad-silence-ms/);
});

t.test('--help puts every option\'s text in one column, the longest flag included', async (t) => {
  const rows = helpText().split('\n').filter((line) => line.startsWith('  --'));
  t.ok(rows.length > 40, 'every option is listed');
  const columns = new Set(rows.map((line) => line.search(/(?<=\S {2,})\S/)));
  t.same([...columns], [rows[0]!.search(/(?<=\S {2,})\S/)], 'one column');
  t.ok(rows.every((line) => /^ {2}--\S+( [A-Z]+)? {2,}\S/.test(line)), 'each flag is followed by at least two spaces');
});

t.test("Realtime's turn_detection.threshold is on OpenAI's scale: 0.5 is the server's tuned Silero threshold", async (t) => {
  const config = parseConfig([]);
  t.equal(vadJudging(config, 0.5).threshold, config.vadThreshold, '0.5 (OpenAI\'s default) is --vad-threshold');
  t.equal(vadJudging(config, 0).threshold, 0);
  t.equal(vadJudging(config, 1).threshold, 1);
  t.equal(vadJudging(parseConfig(['--vad-threshold', '0.6']), 0.75).threshold, 0.8, 'halfway to 1 above it');
  t.equal(vadJudging(parseConfig(['--vad-threshold', '0.6']), 0.25).threshold, 0.3, 'halfway to 0 below it');
  t.match(vadJudging(parseConfig(['--vad', 'webrtc']), 0.5), { mode: 'webrtc', aggressiveness: 3 }, 'with --vad webrtc it picks the WebRTC mode');
});
