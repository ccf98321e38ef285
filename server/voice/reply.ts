/**
 * One reply being spoken. Text deltas go through the chunker; pieces are synthesised one after
 * another by a single loop that runs ahead of the reader, so the next sentence is being made
 * while the previous one plays. A live reply (`leadMs`) runs at most that far ahead of its
 * playback, counted from its first audio: a model's reply can be paragraphs long, and a barge-in
 * after its first sentence would otherwise have paid for synthesising all of them. Abort
 * (barge-in, cancel, a client gone) ends the audio at once: the loop stops, queued audio is
 * dropped and the engine's signal aborts its work. A failing engine ends the audio with `failed`
 * set; the reply's text is not affected.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { EarshotError } from '../../protocol/errors.js';
import { Chunker } from './chunker.js';
import { VOICE_SAMPLE_RATE, type Pcm24k, type SpeakOptions, type SpokenReply, type Tts } from './types.js';

export class StreamedReply implements SpokenReply {
  private readonly tts: Tts;
  private readonly voice: string;
  private readonly signal: AbortSignal;
  private readonly speakOptions: SpeakOptions;
  private readonly chunker: Chunker;
  private readonly pieces: string[] = [];
  private readonly out: Pcm24k[] = [];
  private readonly spokenPieces: { text: string; startSample: number }[] = [];
  private ended = false;
  private finished = false;
  private running = false;
  private reading = false;
  private samples = 0;
  /** When the first audio was made (performance.now()): playback is taken to start there. */
  private firstAudioAt: number | undefined;
  private readonly leadMs: number;
  private error: EarshotError | undefined;
  /** Wakes the reader when audio arrives, the reply finishes or is aborted. */
  private wakeReader: (() => void) | undefined;
  private settle: () => void = () => undefined;
  /** Resolves when the reply is over: its audio read to the end (or the reader gone), or aborted. A draining server waits for it. */
  readonly settled = new Promise<void>((resolve) => (this.settle = resolve));

  /** `leadMs`: synthesise at most this far ahead of real-time playback (0 = as fast as it goes). */
  constructor(tts: Tts, voice: string, signal: AbortSignal, options: SpeakOptions = {}, leadMs = 0) {
    this.tts = tts;
    this.voice = voice;
    this.signal = signal;
    this.speakOptions = options;
    this.leadMs = leadMs;
    this.chunker = new Chunker();
    signal.addEventListener(
      'abort',
      () => {
        this.finish();
        this.settle();
      },
      { once: true },
    );
  }

  get spoken(): ReadonlyArray<{ text: string; startSample: number }> {
    return this.spokenPieces;
  }

  get failed(): EarshotError | undefined {
    return this.error;
  }

  push(text: string): void {
    if (this.ended || this.finished) return;
    this.enqueue(this.chunker.push(text));
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.enqueue(this.chunker.flush());
    if (!this.running && this.pieces.length === 0) this.finish();
  }

  async *audio(): AsyncIterable<Pcm24k> {
    if (this.reading) throw new Error('SpokenReply.audio() can be read once');
    this.reading = true;
    try {
      for (;;) {
        if (this.signal.aborted) return;
        const chunk = this.out.shift();
        if (chunk) {
          yield chunk;
          continue;
        }
        if (this.finished) return;
        await new Promise<void>((resolve) => (this.wakeReader = resolve));
      }
    } finally {
      this.settle();
    }
  }

  private enqueue(pieces: string[]): void {
    if (pieces.length === 0 || this.finished) return;
    this.pieces.push(...pieces);
    if (!this.running) void this.run();
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      for (let text = this.pieces.shift(); text !== undefined && !this.signal.aborted; text = this.pieces.shift()) {
        await this.keepLead();
        if (this.signal.aborted) break;
        const first = this.spokenPieces.length === 0;
        this.spokenPieces.push({ text, startSample: this.samples });
        for await (const pcm of this.tts.speak(text, this.voice, this.signal, { ...this.speakOptions, first })) {
          if (this.signal.aborted) break;
          this.firstAudioAt ??= performance.now();
          this.samples += pcm.length;
          this.out.push(pcm);
          this.wake();
        }
      }
    } catch (err) {
      this.error = err instanceof EarshotError && err.message.startsWith('voice stage') ? err : new EarshotError('voice_error', `voice stage (${this.tts.name}): ${(err as Error).message}`, { cause: err });
      this.pieces.length = 0;
      this.finish();
    } finally {
      this.running = false;
    }
    if (this.ended || this.signal.aborted) this.finish();
  }

  /** Waits while the audio made runs more than leadMs ahead of playback (or until the reply is aborted). */
  private async keepLead(): Promise<void> {
    if (this.leadMs === 0 || this.firstAudioAt === undefined) return;
    const aheadMs = (this.samples / VOICE_SAMPLE_RATE) * 1000 - (performance.now() - this.firstAudioAt);
    if (aheadMs > this.leadMs) await sleep(aheadMs - this.leadMs, undefined, { signal: this.signal }).catch(() => undefined);
  }

  private finish(): void {
    this.finished = true;
    if (this.signal.aborted) this.out.length = 0;
    this.wake();
  }

  private wake(): void {
    const wake = this.wakeReader;
    this.wakeReader = undefined;
    wake?.();
  }
}
