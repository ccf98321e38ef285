/**
 * The web page in Debian's headless chromium, with a fake microphone playing real speech:
 * on the Opus path (WebCodecs), forced to PCM, and in a browser without WebCodecs, each must
 * hold a conversation; then the speaking indicator, Interrupt and reconnecting.
 */
import t, { type Test } from 'tap';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { speechFixture } from '../fixtures/speech.js';
import type { RunningServer } from '../../server/app.js';
import { launchChromium } from '../helpers/browser.js';
import { freePort, startTestServer } from '../helpers/server.js';

const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));

interface PageTurn {
  turnId: string;
  source: 'audio' | 'text';
  audioMs: number;
  reply: string;
  finish?: string;
  latencyMs?: number;
  /** The transcript of an audio turn, once it came. */
  userWords?: string;
}
interface PageState {
  connection: string;
  codec: string;
  engine: string;
  testEngine: boolean;
  turns: PageTurn[];
  errors: { code: string; message: string; fatal: boolean }[];
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

const browser: Browser = await launchChromium(fixture.wav16kPath);
t.teardown(() => browser.close());

async function openPage(query: string, options: { at?: RunningServer; withoutWebCodecs?: boolean } = {}): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 420, height: 860 } });
  // A browser without WebCodecs (older Firefox and Safari): the page must notice by itself.
  if (options.withoutWebCodecs) await context.addInitScript(() => delete (window as { AudioEncoder?: unknown }).AudioEncoder);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  // Capture and the connection are what these test; the voice has its own test (browser-voice.test.ts).
  await page.goto(`${(options.at ?? server).url}/${query}${query ? '&' : '?'}voice=off`);
  await page.waitForFunction(() => window.earshot?.connection === 'open');
  return { page, errors };
}

async function converse(t: Test, query: string, codec: string, shot: string, withoutWebCodecs = false): Promise<void> {
  const { page, errors } = await openPage(query, { withoutWebCodecs });
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

  // The microphone stops first: speech starting while the typed reply streams would cancel it (barge-in).
  await page.click('#mic');
  await page.fill('#text', 'typed hello');
  await page.press('#text', 'Enter');
  await page.waitForFunction(() => window.earshot.turns.some((turn) => turn.source === 'text' && turn.finish));
  t.match((await page.evaluate(() => window.earshot.turns.find((turn) => turn.source === 'text')))?.reply, /read "typed hello"/);
  // The page asks for transcripts: the user's words replace "(spoke for … s)" (checked after the typed turn, which speech must not interrupt).
  await page.waitForFunction(() => window.earshot.turns.filter((turn) => turn.userWords !== undefined).length >= 2);
  const said = await page.locator('#turns .turn .you .said').allTextContents();
  t.ok(said.filter((text) => /^\[echo test transcript: \d+\.\d+ s of audio/.test(text)).length >= 2, `the user's words are on the page (${said.slice(0, 2).join(' | ')})`);

  await page.screenshot({ path: `${ARTIFACTS}${shot}`, fullPage: true });
  t.same(errors, [], 'no page errors');
  await page.context().close();
}

// At once, each page with its own capture of the fake microphone: they wait on speech played in real time, not on the CPU.
t.test('a conversation through the microphone', { jobs: 3 }, async (t) => {
  t.test('Opus through WebCodecs', (t) => converse(t, '', 'opus', 'web-opus.png'));
  t.test('PCM16 with ?codec=pcm', (t) => converse(t, '?codec=pcm', 'pcm16', 'web-pcm.png'));
  t.test('PCM16 when the browser has no WebCodecs', (t) => converse(t, '', 'pcm16', 'web-no-webcodecs.png', true));
});

t.test('the speaking indicator follows the VAD, and Interrupt cancels a streaming reply', async (t) => {
  const slow = await startTestServer({ echoTokenDelayMs: 300 });
  t.teardown(() => slow.close(0));
  const { page, errors } = await openPage('', { at: slow });
  t.equal(await page.getAttribute('#mic', 'aria-pressed'), 'false');
  t.equal(await page.textContent('#speaking .label'), 'not listening');
  await page.click('#mic');
  t.ok(await page.waitForSelector('#mic[aria-pressed="true"]'), 'the microphone button says it is on');
  await page.waitForSelector('#speaking[data-speaking="true"]', { timeout: 20_000 });
  t.equal(await page.textContent('#speaking .label'), 'hearing speech', 'speech is shown while the VAD hears it');
  await page.waitForSelector('#speaking[data-speaking="false"]', { timeout: 20_000 });
  t.equal(await page.textContent('#speaking .label'), 'listening', 'and cleared when it stops');
  await page.click('#mic');
  await page.fill('#text', 'tell me a long story');
  await page.press('#text', 'Enter');
  await page.waitForFunction(() => window.earshot.turns.some((turn) => turn.source === 'text' && turn.reply.length > 0));
  await page.click('#interrupt');
  await page.waitForFunction(() => window.earshot.turns.some((turn) => turn.source === 'text' && turn.finish));
  const typed = await page.evaluate(() => window.earshot.turns.find((turn) => turn.source === 'text'));
  t.equal(typed?.finish, 'cancelled', 'Interrupt cancelled the reply');
  t.notMatch(typed?.reply, /\.$/, 'before it was complete');
  t.same(errors, [], 'no page errors');
  await page.context().close();
});

t.test('the page reconnects by itself after the server restarts', async (t) => {
  // A fixed port (ws transport) so the restarted server is where the page looks for it.
  const port = await freePort();
  let restartable = await startTestServer({ transport: 'ws', port });
  t.teardown(() => restartable.close(0));
  const { page } = await openPage('', { at: restartable });
  await restartable.close(0);
  await page.waitForFunction(() => window.earshot.connection !== 'open');
  t.match(await page.textContent('#connection'), /reconnecting|connecting/, 'the page says it lost the server');
  restartable = await startTestServer({ transport: 'ws', port });
  await page.waitForFunction(() => window.earshot.connection === 'open', null, { timeout: 20_000 });
  await page.fill('#text', 'are you back');
  await page.press('#text', 'Enter');
  await page.waitForFunction(() => window.earshot.turns.some((turn) => turn.source === 'text' && turn.finish === 'stop'));
  t.match((await page.evaluate(() => window.earshot.turns.find((turn) => turn.source === 'text')))?.reply, /read "are you back"/, 'a turn works on the new connection');
  await page.context().close();
});

t.test('with --api-keys: the page asks for the key, keeps it out of the URL, and talks once it has it', async (t) => {
  const keyed = await startTestServer({ apiKeys: ['page-key'] });
  t.teardown(() => keyed.close(0));
  const context = await browser.newContext();
  t.teardown(() => context.close());
  const page = await context.newPage();
  await page.goto(`${keyed.url}/`);
  await page.waitForSelector('#key-form:not([hidden])', { timeout: 20_000 });
  t.equal(await page.evaluate(() => window.earshot.connection), 'failed', 'a wrong or missing key is not retried');
  t.match(await page.textContent('#error-banner'), /unauthorized.*API key/, 'the banner names the problem and the way out');
  await page.fill('#key', 'wrong-key');
  await page.press('#key', 'Enter');
  // The first refusal was of no key at all; this waits for the server's refusal of the wrong one.
  await page.waitForFunction(() => window.earshot.errors.filter((e) => e.code === 'unauthorized').length === 2 && window.earshot.connection === 'failed');
  t.equal(await page.evaluate(() => sessionStorage.getItem('earshot.key')), null, 'the refused key is forgotten');
  t.ok(await page.isVisible('#key-form'), 'a wrong key brings the form back');
  t.match(await page.textContent('#error-banner'), /unauthorized/, 'with the reason');
  await page.fill('#key', 'page-key');
  await page.press('#key', 'Enter');
  await page.waitForFunction(() => window.earshot.connection === 'open', null, { timeout: 20_000 });
  t.ok(await page.isHidden('#key-form'), 'the form goes away once the key works');
  await page.fill('#text', 'with a key');
  await page.press('#text', 'Enter');
  await page.waitForFunction(() => window.earshot.turns.some((turn) => turn.source === 'text' && turn.finish === 'stop'));
  t.pass('with the key the page holds a conversation');

  const linked = await context.newPage();
  await linked.goto(`${keyed.url}/?codec=pcm&token=page-key`);
  await linked.waitForFunction(() => window.earshot?.connection === 'open', null, { timeout: 20_000 });
  t.equal(new URL(linked.url()).search, '?codec=pcm', 'a ?token= link works, and the key leaves the address bar');
});
