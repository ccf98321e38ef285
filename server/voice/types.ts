/**
 * The voice stage's seams: a `Tts` engine turns one chunk of text into 24 kHz mono PCM, and a
 * `SpokenReply` turns a reply's streaming text into a stream of audio for one door. Doors encode
 * the PCM into their own format (base64 pcm16/g711 for Realtime, Opus/PCM frames for native,
 * WAV/PCM/Opus/MP3 for REST).
 */
import type { EarshotError } from '../../protocol/errors.js';

/** Every TTS engine speaks at this rate; doors resample only when the client asks for another. */
export const VOICE_SAMPLE_RATE = 24_000;

/** Mono 16-bit PCM at VOICE_SAMPLE_RATE. */
export type Pcm24k = Int16Array;

export interface VoiceInfo {
  id: string;
  /** BCP-47 language tag of the voice, when known. */
  language?: string;
  /** Lets OpenAI's voice names map to a voice of a similar kind. */
  gender?: 'female' | 'male';
}

export interface SpeakOptions {
  /** Speaking rate, 1 = the voice's own; engines that cannot change it ignore it. */
  speed?: number;
  /**
   * The first piece of a reply: nothing of the reply is playing yet, so it goes ahead of later
   * pieces, which have their predecessors' playback to hide behind (bench/RESULTS.md, voice).
   */
  first?: boolean;
}

export interface Tts {
  readonly name: string;
  voices(): VoiceInfo[];
  /**
   * Speaks one chunk of text (a sentence or clause), yielding PCM as it is made. Stops early and
   * quietly when `signal` aborts; throws an EarshotError when synthesis fails. Never blocks the
   * event loop (synthesis runs in a worker thread, a child process or upstream).
   */
  speak(text: string, voice: string, signal: AbortSignal, options?: SpeakOptions): AsyncIterable<Pcm24k>;
  close(): Promise<void>;
}

/** One reply being spoken: text goes in as the engine streams it, audio comes out in order. */
export interface SpokenReply {
  /** A text delta of the reply. */
  push(text: string): void;
  /** The reply's text is complete: speak what is left. */
  end(): void;
  /**
   * Audio chunks in order; the iteration ends after the last chunk, at once when the reply's
   * signal aborts, or with `failed` set when the TTS engine failed (the text still stands).
   */
  audio(): AsyncIterable<Pcm24k>;
  /** The text that has been sent to synthesis so far, with where its audio starts: `truncate` maps heard ms back to text. */
  readonly spoken: ReadonlyArray<{ text: string; startSample: number }>;
  readonly failed: EarshotError | undefined;
}
