/**
 * The voice stage: between an engine's reply text and the doors. It owns the configured TTS
 * engine and the voice names clients may use; each door asks it for a `SpokenReply` per turn
 * (text in as it streams, 24 kHz PCM out as it is made) or for the speech of a whole text
 * (REST /v1/audio/speech). `--tts none` leaves the stage out: replies are text only.
 */
import type { Config } from '../config.js';
import type { Logger } from '../observability/log.js';
import { createLogger } from '../observability/log.js';
import { FliteTts } from './flite/engine.js';
import { OpenAiSpeechTts } from './openai-speech.js';
import { EncodingThread } from './encoding/threads.js';
import { StreamedReply } from './reply.js';
import { SayTts } from './say.js';
import type { Pcm24k, SpeakOptions, SpokenReply, Tts, VoiceInfo } from './types.js';
import { VoiceBook } from './voices.js';

export interface VoiceStage {
  readonly tts: Tts;
  /** Opus and MP3 encoding off the event loop (native Opus voices, REST Ogg Opus and MP3). */
  readonly encoding: EncodingThread;
  /** The voice used when a client names none. */
  readonly defaultVoice: string;
  /** Every voice name a client may send: the engine's own, then OpenAI's. */
  voiceNames(): string[];
  voices(): VoiceInfo[];
  /** The engine voice for a client's name (OpenAI names map; none = the default); unknown → bad_message listing the names. */
  resolveVoice(requested: string | undefined | null, param?: string): string;
  /**
   * Speaks a reply as its text streams in; `voice` is an engine voice (see resolveVoice). A `live`
   * reply is played as it arrives (native, Realtime): its synthesis keeps at most --tts-lead-ms
   * ahead of playback. Otherwise (REST) it goes as fast as it can.
   */
  reply(voice: string, signal: AbortSignal, options?: ReplyOptions): SpokenReply;
  /**
   * Replies being spoken now, and encoding jobs not yet answered (a reply's last Opus frames and
   * its `done` wait for them): a draining server lets them finish.
   */
  readonly speaking: number;
  /** Speaks a whole text, cut into sentences, audio in order as it is made. Throws the engine's error. */
  speak(text: string, voice: string, signal: AbortSignal, options?: SpeakOptions): AsyncIterable<Pcm24k>;
  close(): Promise<void>;
}

export interface ReplyOptions extends SpeakOptions {
  live?: boolean;
}

class Stage implements VoiceStage {
  readonly tts: Tts;
  private readonly leadMs: number;
  readonly encoding: EncodingThread;
  private readonly book: VoiceBook;
  /** Replies made by reply() and not yet settled. */
  private active = 0;

  constructor(tts: Tts, defaultVoice: string | undefined, leadMs: number, logger: Logger) {
    this.tts = tts;
    this.leadMs = leadMs;
    this.encoding = new EncodingThread(logger.child({ room: 'voice' }));
    this.book = new VoiceBook(tts.name, tts.voices(), defaultVoice);
  }

  get defaultVoice(): string {
    return this.book.defaultVoice;
  }

  voiceNames(): string[] {
    return this.book.names();
  }

  voices(): VoiceInfo[] {
    return this.tts.voices();
  }

  resolveVoice(requested: string | undefined | null, param = 'voice'): string {
    return this.book.resolve(requested, param);
  }

  get speaking(): number {
    return this.active + this.encoding.unanswered;
  }

  reply(voice: string, signal: AbortSignal, { live, ...options }: ReplyOptions = {}): SpokenReply {
    const reply = new StreamedReply(this.tts, voice, signal, options, live ? this.leadMs : 0);
    this.active++;
    void reply.settled.then(() => this.active--);
    return reply;
  }

  async *speak(text: string, voice: string, signal: AbortSignal, options: SpeakOptions = {}): AsyncIterable<Pcm24k> {
    const reply = new StreamedReply(this.tts, voice, signal, options);
    reply.push(text);
    reply.end();
    yield* reply.audio();
    if (reply.failed) throw reply.failed;
  }

  async close(): Promise<void> {
    await Promise.all([this.tts.close(), this.encoding.stop()]);
  }
}

async function createTts(config: Config, logger: Logger): Promise<Tts | undefined> {
  const parallel = config.ttsThreads;
  const maxQueue = config.ttsMaxQueue;
  switch (config.tts) {
    case 'none':
      return undefined;
    case 'flite':
      return new FliteTts({ threads: parallel, maxQueue }, logger);
    case 'say':
      return SayTts.start({ command: config.ttsSayCommand, parallel, maxQueue });
    case 'openai':
      return new OpenAiSpeechTts({ url: config.ttsUrl!, model: config.ttsModel, key: config.ttsKey, voices: config.ttsVoices, parallel, maxQueue, timeoutMs: config.ttsTimeoutMs });
  }
}

/** The configured voice stage, or undefined for `--tts none`; `given` replaces the configured engine. */
export async function createVoiceStage(config: Config, logger: Logger = createLogger('silent'), given?: Tts): Promise<VoiceStage | undefined> {
  const tts = given ?? (await createTts(config, logger));
  if (!tts) return undefined;
  try {
    return new Stage(tts, config.ttsVoice, config.ttsLeadMs, logger);
  } catch (err) {
    await tts.close();
    throw err;
  }
}
