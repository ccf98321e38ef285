/**
 * The curl examples of the README's REST section, run exactly as written (every ```sh block, in order, in
 * one shell) against a live server with a key configured, and each block's output checked.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { decodeWav } from '../../server/audio/wav.js';
import { ECHO_MODEL_ID } from '../../server/engines/echo/engine.js';
import { startTestServer } from '../helpers/server.js';

const MARK = '@@earshot-docs-block@@';
const DOC = new URL('../../README.md', import.meta.url);

/** The README's REST section: from its heading to the next second-level heading. */
async function restSection(): Promise<string> {
  const readme = await readFile(DOC, 'utf8');
  const start = readme.indexOf('## REST:');
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** One check per ```sh block, in document order: a new block needs a new check here. */
const CHECKS: Array<(t: Test, out: string, dir: string) => Promise<void> | void> = [
  (t, out) => t.equal(out.trim(), `model: ${ECHO_MODEL_ID}`, 'setup block finds the served model'),
  (t, out) => t.match(JSON.parse(out), { object: 'chat.completion', choices: [{ message: { role: 'assistant', content: /read "Say hello in one sentence\."/ }, finish_reason: 'stop' }] }, 'text example answers'),
  async (t, out, dir) => {
    const wav = decodeWav(await readFile(join(dir, 'question.wav')));
    const expectedMs = Math.round((wav.channels[0]!.length * 1000) / wav.sampleRate);
    const heard = Number(/heard (\d+) ms of audio/.exec(JSON.parse(out).choices[0].message.content)?.[1]);
    t.ok(Math.abs(heard - expectedMs) <= 20, `audio example reaches the engine whole (${heard} ms vs ${expectedMs} ms)`);
  },
  (t, out) => {
    const events = out.split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
    t.equal(events.at(-1)?.trim(), '[DONE]', 'stream example ends with [DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as { choices: Array<{ delta: { content?: string } }>; usage: unknown });
    t.match(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), /read "Count to three\."/, 'stream example streams the answer');
    t.match(chunks.at(-1), { choices: [], usage: { total_tokens: Number } }, 'stream example ends with the usage chunk');
  },
  (t, out) => t.match(JSON.parse(out), { error: { type: 'not_found_error', param: 'model', code: 'not_found' } }, 'error example shows a 404 body'),
  (t, out) => t.match(JSON.parse(out), { text: /^\[echo test transcript: \d+\.\d+ s of audio/, usage: { type: 'tokens' } }, 'transcription example transcribes the recorded question'),
  (t, out) => {
    const events = out.split('\n\n').filter(Boolean).map((e) => JSON.parse(e.replace(/^data: /, '')) as { type: string; delta?: string; text?: string });
    t.ok(events.slice(0, -1).every((e) => e.type === 'transcript.text.delta'), 'streamed transcription sends deltas');
    t.match(events.at(-1), { type: 'transcript.text.done', text: /^\[echo test transcript: / }, 'then the whole text');
  },
  (t, out) => t.match(out, /^1\n00:00:\d\d,\d{3} --> 00:00:\d\d,\d{3}\n\[echo test transcript: /, 'srt example gives a cue for the spoken question'),
  async (t, _out, dir) => {
    const { channels, sampleRate } = decodeWav(await readFile(join(dir, 'hello.wav')));
    const seconds = channels[0]!.length / sampleRate;
    t.ok(sampleRate === 24_000 && seconds > 1.5 && seconds < 6, `speech example writes ${seconds.toFixed(2)} s of 24 kHz speech`);
  },
];

t.test("the README's REST examples run against a live server", async (t) => {
  const server = await startTestServer({ apiKeys: ['docs-key'] });
  const dir = await mkdtemp(join(tmpdir(), 'earshot-docs-'));
  t.teardown(async () => {
    await server.close(0);
    await rm(dir, { recursive: true, force: true });
  });
  const blocks = [...(await restSection()).matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  t.equal(blocks.length, CHECKS.length, `the README's REST section has ${blocks.length} sh blocks and this test checks ${CHECKS.length}`);
  const script = ['set -eu', ...blocks.flatMap((block) => [`echo '${MARK}'`, block])].join('\n');
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile('bash', ['-c', script], { cwd: dir, env: { ...process.env, EARSHOT_URL: server.url, EARSHOT_API_KEY: 'docs-key' }, maxBuffer: 16 << 20 }, (err, out, stderr) =>
      err ? reject(new Error(`docs examples failed: ${err.message}\n${stderr}`)) : resolve(out),
    );
  });
  const outputs = stdout.split(`${MARK}\n`).slice(1);
  t.equal(outputs.length, blocks.length, 'every block ran');
  for (const [i, check] of CHECKS.entries()) await check(t, outputs[i] ?? '', dir);
});
