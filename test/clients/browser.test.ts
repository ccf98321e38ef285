/**
 * The web page in Debian's headless chromium, with a fake microphone playing real speech:
 * once on the Opus path (WebCodecs) and once forced to PCM, both must hold a conversation.
 */
import t, { type Test } from 'tap';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { speechFixture } from '../fixtures/speech.js';
import { startTestServer } from '../helpers/server.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));

interface PageTurn {
  turnId: string;
  source: 'audio' | 'text';
  audioMs: number;
  reply: string;
  finish?: string;
  latencyMs?: number;
}
interface PageState {
  connection: string;
  codec: string;
  engine: string;
  testEngine: boolean;
  turns: PageTurn[];
}
declare global {
  interface Window {
    earshot: PageState;
  }
}

const fixture = await speechFixture(2);
const server = await startTestServer();
t.teardown(() => server.close(0));
await mkdir(ARTIFACTS, { recursive: true });

const browser: Browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: [
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    `--use-file-for-fake-audio-capture=${fixture.wav16kPath}`,
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ],
});
t.teardown(() => browser.close());

async function openPage(query: string): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 420, height: 860 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  await page.goto(`${server.url}/${query}`);
  await page.waitForFunction(() => window.earshot?.connection === 'open');
  return { page, errors };
}

async function converse(t: Test, query: string, codec: string, shot: string): Promise<void> {
  const { page, errors } = await openPage(query);
  const state = await page.evaluate(() => window.earshot);
  t.equal(state.codec, codec);
  t.equal(state.engine, 'echo');
  t.ok(await page.isVisible('#test-banner'), 'the echo test engine is announced');
  await page.click('#mic');
  await page.waitForFunction(() => window.earshot.turns.filter((turn) => turn.source === 'audio' && turn.finish === 'stop').length >= 2, null, { timeout: 60_000 });
  const turns = (await page.evaluate(() => window.earshot.turns)).filter((turn) => turn.source === 'audio' && turn.finish === 'stop');
  for (const turn of turns.slice(0, 2)) {
    t.match(turn.reply, /^Echo test engine, turn \d+: heard \d+ ms of audio at rms 0\.\d+\.$/);
    // Each reply answers one sentence of the fixture, not a fragment or two sentences run together.
    t.ok(turn.audioMs > 1000 && turn.audioMs < 4500, `a sentence-long utterance (${turn.audioMs} ms)`);
    t.type(turn.latencyMs, 'number', 'latency is shown');
  }
  const shown = await page.locator('#turns .turn .reply .text').allTextContents();
  t.ok(shown.filter((text) => text.startsWith('Echo test engine')).length >= 2, 'replies are on the page');
  t.match(await page.locator('#turns .turn .meta').first().textContent(), /first reply \d+ ms after you stopped speaking/);

  await page.fill('#text', 'typed hello');
  await page.press('#text', 'Enter');
  await page.waitForFunction(() => window.earshot.turns.some((turn) => turn.source === 'text' && turn.finish));
  t.match((await page.evaluate(() => window.earshot.turns.find((turn) => turn.source === 'text')))?.reply, /read "typed hello"/);

  await page.screenshot({ path: `${ARTIFACTS}${shot}`, fullPage: true });
  t.same(errors, [], 'no page errors');
  await page.context().close();
}

t.test('Opus through WebCodecs', (t) => converse(t, '', 'opus', 'web-opus.png'));
t.test('PCM16 with ?codec=pcm', (t) => converse(t, '?codec=pcm', 'pcm16', 'web-pcm.png'));
