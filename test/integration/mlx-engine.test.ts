/**
 * The mlx engine end to end: real sockets, real speech, the real worker.py in real Python
 * processes, with the stand-in mlx_vlm from test/fixtures (no weights can be had here).
 */
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { speechFixture } from '../fixtures/speech.js';
import { TestClient } from '../helpers/native-client.js';
import { startTestServer } from '../helpers/server.js';

const STANDIN = fileURLToPath(new URL('../fixtures/', import.meta.url));
const PYTHON = '/usr/bin/python3';
const WATCHED = ['PYTHONPATH', 'STANDIN_LOG', 'STANDIN_TOKEN_DELAY_MS', 'STANDIN_DOWNLOAD_BYTES', 'STANDIN_DOWNLOAD_STEPS', 'STANDIN_DOWNLOAD_STEP_MS'];
const envNow = () => Object.fromEntries(WATCHED.map((name) => [name, process.env[name]]));
const ENV_BEFORE = envNow();

/** Sets (or, with undefined, removes) environment variables for one test; its teardown puts back what was there. */
function setEnv(t: Test, vars: Record<string, string | undefined>): void {
  const apply = (values: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  const saved = Object.fromEntries(Object.keys(vars).map((name) => [name, process.env[name]]));
  apply(vars);
  t.teardown(() => apply(saved));
}

t.test('auto picks echo without mlx_vlm, mlx where python can import it', async (t) => {
  setEnv(t, { PYTHONPATH: undefined });
  const without = await startTestServer({ engine: 'auto', python: PYTHON });
  t.equal(without.ctx.engine.name, 'echo');
  await without.close(0);
  process.env.PYTHONPATH = STANDIN;
  const withStandIn = await startTestServer({ engine: 'auto', python: PYTHON, mlxWorkers: 1 });
  t.equal(withStandIn.ctx.engine.name, 'mlx');
  const health = (await (await fetch(`${withStandIn.url}/health`)).json()) as { engine: string; testEngine: boolean };
  t.match(health, { engine: 'mlx', testEngine: false });
  await withStandIn.close(0);
});

t.test('three concurrent speech sessions through the mlx worker pool', async (t) => {
  setEnv(t, { PYTHONPATH: STANDIN });
  const server = await startTestServer({ engine: 'mlx', python: PYTHON, mlxWorkers: 2, mlxMaxBatch: 4, coalesce: false });
  t.teardown(() => server.close(1000));
  const fixtures = await Promise.all([20, 21, 22].map((id) => speechFixture(id)));
  const clients = await Promise.all(fixtures.map(() => TestClient.connect(`${server.wsUrl}/v1/stream`)));
  for (const c of clients) {
    const ready = await c.hello({ codec: 'opus', sampleRate: 16000, vad: { bargeIn: false } });
    t.match(ready, { engine: 'mlx', testEngine: false });
  }
  await Promise.all(clients.map((c, i) => c.stream(fixtures[i]!.opusPackets, 20, 8)));
  const results = await Promise.all(clients.map((c, i) => c.waitForTurnsDone(fixtures[i]!.truth.length, 60_000)));
  results.forEach((turns, i) => {
    t.equal(turns.length, fixtures[i]!.truth.length, `session ${i}: one turn per sentence`);
    turns.forEach((turn, k) => {
      t.equal(turn.finish, 'stop', `session ${i} turn ${k}: finished`);
      // The stand-in answers from the embeddings it was given: the clip's length, and how many user turns the prompt held.
      t.match(turn.text, new RegExp(`heard ${turn.audioMs} ms .*clips 1 users ${k + 1}`), `session ${i} turn ${k}: derived from its own audio, history in order`);
    });
  });
  for (const c of clients) c.close();
});

t.test('the decode batches the worker runs follow the scheduler and worker settings', async (t) => {
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const logDir = mkdtempSync(join(tmpdir(), 'earshot-standin-'));
  const log = join(logDir, 'steps.jsonl');
  setEnv(t, { PYTHONPATH: STANDIN, STANDIN_LOG: log, STANDIN_TOKEN_DELAY_MS: '20' });
  t.teardown(() => rmSync(logDir, { recursive: true, force: true }));
  const server = await startTestServer({ engine: 'mlx', python: PYTHON, mlxWorkers: 1, mlxMaxBatch: 4, maxBatch: 4 });
  t.teardown(() => server.close(1000));
  const clients = await Promise.all(Array.from({ length: 8 }, () => TestClient.connect(`${server.wsUrl}/v1/stream`)));
  for (const c of clients) await c.hello({ codec: 'pcm16', sampleRate: 16000 });
  clients.forEach((c, i) => c.send({ type: 'text', text: `question number ${i}` }));
  const turns = await Promise.all(clients.map((c) => c.waitForTurnsDone(1, 60_000)));
  turns.forEach((own, i) => t.match(own[0]!.text, new RegExp(`text question number ${i}\\b`), `session ${i} got the answer to its own question`));
  const sizes = readFileSync(log, 'utf8').trim().split('\n').map((line) => (JSON.parse(line) as { batch: number }).batch);
  t.equal(Math.max(...sizes), 4, 'eight concurrent turns ran four at a time: the worker filled its batch');
  t.ok(sizes.every((size) => size <= 4), 'and never past maxBatch');
  for (const c of clients) c.close();
});

t.test('the server listens while the model downloads, and /health shows how far it got', async (t) => {
  const download = { STANDIN_DOWNLOAD_BYTES: '2000000000', STANDIN_DOWNLOAD_STEPS: '4', STANDIN_DOWNLOAD_STEP_MS: '1100' };
  setEnv(t, { PYTHONPATH: STANDIN, ...download });
  const server = await startTestServer({ engine: 'mlx', python: PYTHON, mlxWorkers: 1, mlxLoadStallMs: 10_000 });
  t.teardown(() => server.close(1000));
  type Health = { status: string; loading?: { stage: string; percent?: number; totalBytes?: number } };
  const seen: Health[] = [];
  for (;;) {
    const response = await fetch(`${server.url}/health`);
    const health = (await response.json()) as Health;
    t.equal(response.status, health.status === 'loading' ? 503 : 200, `HTTP status for ${health.status}`);
    seen.push(health);
    if (health.status === 'ok') break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const downloading = seen.filter((h) => h.loading?.stage === 'download');
  t.ok(downloading.length > 0, 'the download was visible');
  t.ok(downloading.some((h) => h.loading!.percent! > 0 && h.loading!.percent! < 100), 'with a percent on the way');
  t.equal(downloading[0]!.loading!.totalBytes, 2_000_000_000);
  await server.engineReady;
  // Once ready, a turn runs as usual.
  const client = await TestClient.connect(`${server.wsUrl}/v1/stream`);
  await client.hello({ codec: 'pcm16', sampleRate: 16000 });
  client.send({ type: 'text', text: 'ready now' });
  const [turn] = await client.waitForTurnsDone(1, 30_000);
  t.match(turn!.text, /text ready now/);
  client.close();
});

t.test('a model whose prompt would drop the audio refuses voice turns with a clear error and still answers typed ones', async (t) => {
  const { default: OpenAI, APIError } = await import('openai');
  const { encodeWav16 } = await import('../../server/audio/wav.js');
  setEnv(t, { PYTHONPATH: STANDIN });
  // The stand-in loads a tokenizer without a chat template for this id: mlx_vlm then builds a plain prompt with no audio tokens.
  const server = await startTestServer({ engine: 'mlx', python: PYTHON, mlxWorkers: 1, mlxModel: 'standin/notemplate' });
  t.teardown(() => server.close(1000));
  await server.engineReady;
  const client = new OpenAI({ apiKey: 'x', baseURL: `${server.url}/v1`, maxRetries: 0 });
  const clip = new Float32Array(8000).map((_, i) => 0.2 * Math.sin(i / 5));
  const audio = { type: 'input_audio' as const, input_audio: { data: Buffer.from(encodeWav16(clip, 16000)).toString('base64'), format: 'wav' as const } };
  const err = await client.chat.completions.create({ model: 'standin/notemplate', messages: [{ role: 'user', content: [audio] }] }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof APIError);
  t.equal((err as InstanceType<typeof APIError>).status, 502);
  t.match((err as Error).message, /the prompt holds no audio tokens, so the model would not hear the audio/);
  const typed = await client.chat.completions.create({ model: 'standin/notemplate', messages: [{ role: 'user', content: 'hello' }] });
  t.match(typed.choices[0]?.message.content, /^clips 0 users 0/, 'typed turns still run (the plain prompt has no turn markup)');
});

t.test('the environment is left as the file found it', async (t) => {
  t.same(envNow(), ENV_BEFORE);
});
