/** Debian's headless chromium for the web page's tests, its microphone a file of real speech. */
import { chromium, type Browser } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';

export function launchChromium(fakeMicrophoneWav: string): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${fakeMicrophoneWav}`,
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      // The page's voice plays without a click first (the tests' clicks would unlock it too, later).
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}
