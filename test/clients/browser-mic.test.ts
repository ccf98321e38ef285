/**
 * The web page's microphone on the Opus path (issue 13): stopping it sends nothing after the
 * stop (a stray frame reached the server as a corrupt Opus packet, and its red banner stayed),
 * and one corrupt packet is an error the session survives, its banner gone once things work.
 * Headless chromium with a fake microphone playing real speech (test/helpers/browser.ts).
 */
import t from 'tap';
import type { BrowserContext, Page } from 'playwright-core';
import type { RunningServer } from '../../server/app.js';
import { speechFixture } from '../fixtures/speech.js';
import { launchChromium } from '../helpers/browser.js';
import { startTestServer } from '../helpers/server.js';

/** The part of the page's `window.earshot` these tests read (browser.test.ts declares the global). */
type MicWindow = {
  earshot: {
    connection: string;
    codec: string;
    sentFrames: number;
    errors: { code: string; message: string; fatal: boolean }[];
    turns: { source: 'audio' | 'text'; finish?: string }[];
  };
};

const fixture = await speechFixture(2);
const server = await startTestServer();
t.teardown(() => server.close(0));
const browser = await launchChromium(fixture.wav16kPath);
t.teardown(() => browser.close());

async function openPage(at: RunningServer, options: { route?: (context: BrowserContext) => Promise<void> } = {}): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext();
  await options.route?.(context);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  await page.goto(`${at.url}/?voice=off`);
  await page.waitForFunction(() => (window as unknown as MicWindow).earshot?.connection === 'open');
  return { page, errors };
}

t.test('stopping the microphone again and again sends nothing the server cannot decode (Opus)', async (t) => {
  const { page, errors } = await openPage(server);
  t.equal(await page.evaluate(() => (window as unknown as MicWindow).earshot.codec), 'opus');
  for (let i = 0; i < 6; i++) {
    const sent = await page.evaluate(() => (window as unknown as MicWindow).earshot.sentFrames);
    await page.click('#mic');
    await page.waitForFunction((before) => (window as unknown as MicWindow).earshot.sentFrames >= before + 10, sent);
    await page.click('#mic');
    await page.waitForSelector('#mic[aria-pressed="false"]');
  }
  // The server handles a socket's frames in order: once this reply is done, every packet sent before it was decoded.
  await page.fill('#text', 'after the stops');
  await page.press('#text', 'Enter');
  await page.waitForFunction(() => (window as unknown as MicWindow).earshot.turns.some((turn) => turn.source === 'text' && turn.finish === 'stop'));
  t.same(await page.evaluate(() => (window as unknown as MicWindow).earshot.errors), [], 'the server reported no error');
  t.ok(await page.isHidden('#error-banner'), 'no error banner');
  t.same(errors, [], 'no page errors');
  await page.context().close();
});

t.test('one corrupt packet: the session goes on and the error banner clears once things work', async (t) => {
  // Every frame takes a detour through this process, so replies may be slow: no barge-in to cancel them.
  const patient = await startTestServer({ bargeIn: false });
  t.teardown(() => patient.close(0));
  let audioFrames = 0;
  const { page, errors } = await openPage(patient, {
    route: (context) =>
      context.routeWebSocket(/\/v1\/stream$/, (ws) => {
        const server = ws.connectToServer();
        // The 25th audio packet (a raw frame: tag byte 0) becomes bytes libopus refuses.
        ws.onMessage((message) => server.send(typeof message !== 'string' && message[0] === 0 && ++audioFrames === 25 ? Buffer.from([0, 0xff, 0xff, 0xff]) : message));
      }),
  });
  await page.click('#mic');
  await page.waitForFunction(() => (window as unknown as MicWindow).earshot.errors.length > 0 && (window as unknown as MicWindow).earshot.turns.some((turn) => turn.source === 'audio' && turn.finish === 'stop'), null, { timeout: 60_000 });
  t.match(await page.evaluate(() => (window as unknown as MicWindow).earshot.errors), [{ code: 'bad_audio', fatal: false, message: /corrupt opus packet/ }], 'the server reported the packet');
  t.match(await page.textContent('#error-banner'), /bad_audio/, 'the banner showed it');
  t.ok(await page.isHidden('#error-banner'), 'and went away once speech was heard and answered');
  t.same(errors, [], 'no page errors');
  await page.context().close();
});
