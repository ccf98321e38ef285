/**
 * The web page speaks with the server's voice: in headless chromium, a typed turn's reply is
 * played through Web Audio (sound reaches the output), the page shows Earshot speaking, and the
 * fake microphone's speech stops the voice at once and tells the server how much was heard.
 */
import t from 'tap';
import { speechFixture } from '../fixtures/speech.js';
import { launchChromium } from '../helpers/browser.js';
import { startTestServer } from '../helpers/server.js';

interface VoicePageState {
  connection: string;
  turns: { turnId: string; source: string; reply: string; finish?: string; voiceLatencyMs?: number }[];
  voice?: { codec: string; sampleRate: number };
  playing: boolean;
  truncated: { turnId: string; audioEndMs: number; text: string }[];
}
/** The page's globals (browser.test.ts declares `window.earshot` for the rest of its state). */
type PageWindow = { earshot: VoicePageState; earshotPlayerPeak: () => number };

const fixture = await speechFixture(2);
const server = await startTestServer();
t.teardown(() => server.close(0));
const browser = await launchChromium(fixture.wav16kPath);
t.teardown(() => browser.close());

t.test("the page plays the server's voice, shows it speaking, and stops it the moment the user speaks", async (t) => {
  const page = await (await browser.newContext()).newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(`${server.url}/`);
  await page.waitForFunction(() => (window as unknown as PageWindow).earshot?.connection === 'open');
  t.match(await page.evaluate(() => (window as unknown as PageWindow).earshot.voice), { codec: 'pcm16', sampleRate: 24000 }, 'the page asked for the server voice');
  t.ok(await page.isHidden('#voice-state'), 'not speaking yet');
  await page.fill('#text', 'One two three four five. Six seven eight nine ten. Eleven twelve thirteen fourteen fifteen. Sixteen seventeen eighteen nineteen twenty.');
  await page.press('#text', 'Enter');
  await page.waitForFunction(() => (window as unknown as PageWindow).earshot.playing, null, { timeout: 60_000 });
  t.ok(await page.isVisible('#voice-state'), 'the page shows Earshot speaking');
  // Sound reaches the output: the analyser in front of the speakers sees the voice.
  await page.waitForFunction(() => (window as unknown as PageWindow).earshotPlayerPeak() > 0.05, null, { timeout: 30_000 });
  t.pass('the voice plays');
  await page.click('#mic');
  await page.waitForFunction(() => (window as unknown as PageWindow).earshot.truncated.length > 0, null, { timeout: 60_000 });
  t.notOk(await page.evaluate(() => (window as unknown as PageWindow).earshot.playing), 'the voice stopped when the user spoke');
  t.ok(await page.isHidden('#voice-state'), 'and the page says so');
  const [cut] = await page.evaluate(() => (window as unknown as PageWindow).earshot.truncated);
  const typed = await page.evaluate(() => (window as unknown as PageWindow).earshot.turns.find((turn) => turn.source === 'text'));
  t.equal(cut?.turnId, typed?.turnId, 'the server was told how much of the reply was heard');
  t.ok(cut!.audioEndMs > 0 && cut!.text.length > 0 && cut!.text.length < typed!.reply.length, `heard ${cut!.audioEndMs} ms: "${cut!.text}"`);
  t.type(typed?.voiceLatencyMs, 'number', 'the time to the first voice is shown');
  t.same(errors, [], 'no page errors');
  await page.context().close();
});
