/**
 * macOS voices through `say(1)`: built into every Mac (the machine that runs Gemma-4 on MLX has
 * them), nothing to download. One `say` process per sentence writes a 24 kHz 16-bit WAV
 * (`--data-format=LEI16@24000`) to a private temporary file; the text goes in on stdin
 * (`-f -`), so no text is ever taken for an option. Cancelling a sentence kills its process.
 * Voices come from `say -v '?'` at start-up.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EarshotError } from '../../protocol/errors.js';
import { floatToPcm16 } from '../audio/pcm16.js';
import { resample } from '../audio/resample.js';
import { decodeWav } from '../audio/wav.js';
import { Slots } from './slots.js';
import { VOICE_SAMPLE_RATE, type Pcm24k, type SpeakOptions, type Tts, type VoiceInfo } from './types.js';

/** say's default rate is about 175-200 words per minute; `speed` scales this. */
const BASE_WORDS_PER_MINUTE = 180;
/** Well-known macOS voices, so OpenAI's voice names map to one of a similar kind. */
const KNOWN_GENDER: Record<string, 'female' | 'male'> = {
  Samantha: 'female', Alex: 'male', Daniel: 'male', Karen: 'female', Moira: 'female', Tessa: 'female', Victoria: 'female', Allison: 'female',
  Ava: 'female', Susan: 'female', Zoe: 'female', Fred: 'male', Tom: 'male', Oliver: 'male', Aaron: 'male', Rishi: 'male', Evan: 'male', Nathan: 'male',
};
/** `say -v '?'` lines: name (may hold spaces and brackets; a long one is followed by a single space), locale, `# sample text`. */
const VOICE_LINE = /^(.+?)\s+([a-z]{2,3}[_-][A-Za-z0-9_-]+)\s+#/;

export interface SayOptions {
  command: string;
  /** say processes at once. */
  parallel: number;
  maxQueue: number;
}

function run(command: string, args: string[], input: string, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(signal ? { signal } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${command} exited with ${code}${stderr ? `: ${stderr.trim().slice(0, 200)}` : ''}`))));
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

export class SayTts implements Tts {
  readonly name = 'say';
  private readonly options: SayOptions;
  private readonly voiceList: VoiceInfo[];
  private readonly slots: Slots;

  private constructor(options: SayOptions, voices: VoiceInfo[]) {
    this.options = options;
    this.voiceList = voices;
    this.slots = new Slots('say', options.parallel, options.maxQueue);
  }

  static async start(options: SayOptions): Promise<SayTts> {
    let listing: string;
    try {
      listing = await run(options.command, ['-v', '?'], '');
    } catch (err) {
      throw new EarshotError('voice_error', `voice stage (say): cannot list voices with '${options.command} -v ?' (${(err as Error).message}); --tts say needs macOS`);
    }
    const voices: VoiceInfo[] = [];
    for (const line of listing.split('\n')) {
      const match = VOICE_LINE.exec(line);
      if (!match) continue;
      const id = match[1]!.trim();
      const gender = KNOWN_GENDER[id];
      voices.push({ id, language: match[2]!.replace('_', '-'), ...(gender ? { gender } : {}) });
    }
    // English voices first, Samantha (the macOS default) leading, so the default voice speaks English.
    voices.sort((a, b) => Number(b.id === 'Samantha') - Number(a.id === 'Samantha') || Number(b.language?.startsWith('en')) - Number(a.language?.startsWith('en')));
    return new SayTts(options, voices);
  }

  voices(): VoiceInfo[] {
    return this.voiceList;
  }

  async *speak(text: string, voice: string, signal: AbortSignal, options: SpeakOptions = {}): AsyncIterable<Pcm24k> {
    const release = await this.slots.acquire(signal, options.first === true);
    if (!release) return;
    const dir = await mkdtemp(join(tmpdir(), 'earshot-say-'));
    try {
      const file = join(dir, 'speech.wav');
      const rate = String(Math.round(BASE_WORDS_PER_MINUTE * (options.speed ?? 1)));
      const args = ['-v', voice, '-r', rate, '-o', file, '--file-format=WAVE', `--data-format=LEI16@${VOICE_SAMPLE_RATE}`, '-f', '-'];
      try {
        await run(this.options.command, args, text, signal);
      } catch (err) {
        if (signal.aborted) return;
        throw new EarshotError('voice_error', `voice stage (say): ${(err as Error).message}`);
      }
      const { channels, sampleRate } = decodeWav(await readFile(file));
      if (!signal.aborted) yield floatToPcm16(resample(channels[0]!, sampleRate, VOICE_SAMPLE_RATE));
    } finally {
      release();
      await rm(dir, { recursive: true, force: true });
    }
  }

  async close(): Promise<void> {}
}
