/** A forced internal failure reaches clients as a bare "internal error": no stack, no path, no original message. */
import t from 'tap';
import { EchoEngine } from '../../server/engines/echo/engine.js';
import type { Engine, ModelInfo, TurnEvent, TurnRequest } from '../../server/engines/types.js';
import { TestClient } from '../helpers/native-client.js';
import { startTestServer } from '../helpers/server.js';

const SECRET_DETAIL = "ENOENT: no such file '/srv/earshot/internal/secret-path.ts'";

/** Fine while the server starts, then every models() call and every run fails the way a bug would. */
class BrokenEngine extends EchoEngine {
  broken = false;
  override models(): ModelInfo[] {
    if (this.broken) throw new TypeError(SECRET_DETAIL);
    return super.models();
  }
  override run(_batch: TurnRequest[], _emit: (turnId: string, event: TurnEvent) => void): Promise<void> {
    return Promise.reject(new TypeError(SECRET_DETAIL));
  }
}

function leaks(text: string): boolean {
  return /secret-path|\/srv\/|ENOENT|TypeError|\bat .*:\d+:\d+/.test(text);
}

t.test('internal errors leak nothing', async (t) => {
  const engine = new BrokenEngine({ tokenDelayMs: 0, capacity: 4 });
  const server = await startTestServer({}, { engine: engine as Engine });
  t.teardown(() => server.close(0));

  const turn = await TestClient.connect(`${server.wsUrl}/v1/stream`);
  await turn.hello({ codec: 'pcm16', sampleRate: 16000 });
  turn.send({ type: 'text', text: 'crash please' });
  const failed = await turn.waitFor((m) => m.type === 'error');
  t.match(failed, { type: 'error', code: 'engine_error', fatal: false }, 'a crashing engine run is an engine_error');
  t.notOk(leaks(JSON.stringify(turn.messages)), 'native: no detail from the crash');

  engine.broken = true;
  const hello = await TestClient.connect(`${server.wsUrl}/v1/stream`);
  hello.send({ type: 'hello', codec: 'pcm16', sampleRate: 16000 });
  t.match(await hello.waitFor((m) => m.type === 'error'), { code: 'internal', message: 'internal error' }, 'native: a bug while starting a session');
  t.notOk(leaks(JSON.stringify(hello.messages)), 'native: nothing else said');

  for (const [method, path, body] of [
    ['GET', '/v1/models', undefined],
    ['GET', '/health', undefined],
    ['POST', '/v1/chat/completions', JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'hi' }] })],
  ] as const) {
    const res = await fetch(`${server.url}${path}`, { method, ...(body ? { body, headers: { 'content-type': 'application/json' } } : {}) });
    const text = await res.text();
    t.equal(res.status, 500, `${method} ${path}: 500`);
    t.match(JSON.parse(text), { error: { message: 'internal error', type: 'server_error' } }, `${method} ${path}: OpenAI error shape`);
    t.notOk(leaks(text), `${method} ${path}: no detail`);
  }
  engine.broken = false;
  t.equal((await fetch(`${server.url}/health`)).status, 200, 'the server kept running');
});
