/**
 * The file formats REST speech comes in (`/v1/audio/speech` response_format, chat completions'
 * `audio.format`), each as a streaming encoder: bytes for a reply's audio as it is made, so a
 * streamed response carries sound before the whole text is spoken. OpenAI also offers aac and
 * flac; no encoder for them is at hand on npm, so they are refused with the list of these.
 * Opus and MP3 are encoded on the voice stage's encoding thread, off the event loop (a sentence's
 * audio arrives as seconds at once: ~0.2 ms a packet for Opus, ~30 ms a 3 s sentence for MP3,
 * which on the loop stalled every session's frames behind it); Ogg pages are made here.
 */
import type { SPEECH_FORMATS } from '../../protocol/openai.js';
import { OggOpusWriter } from '../audio/ogg-writer.js';
import { OPUS_FRAME_MS } from '../audio/opus-encoder.js';
import { pcm16Bytes, WAV_STREAMED_SIZE, wavHeader16 } from '../audio/wav.js';
import type { EncodingThread } from './encoding/threads.js';
import { VOICE_SAMPLE_RATE, type Pcm24k } from './types.js';

export type SpeechFormat = (typeof SPEECH_FORMATS)[number];

export const CONTENT_TYPES: Record<SpeechFormat, string> = {
  mp3: 'audio/mpeg',
  opus: 'audio/ogg; codecs=opus',
  wav: 'audio/wav',
  pcm: 'audio/pcm; rate=24000; channels=1',
};

export interface SpeechEncoder {
  readonly contentType: string;
  /** Bytes that open the file (headers); may be empty. */
  start(): Uint8Array;
  /** Calls are answered in order; the next may be made before the last is answered. */
  encode(pcm: Pcm24k): Promise<Uint8Array>;
  /** The rest of the file; the encoder is done after it. */
  end(): Promise<Uint8Array>;
  /** Frees what the encoder holds if it will not reach end() (the client left, synthesis failed). */
  close(): void;
}

/** What the encoding thread answers a stream's call with. */
function answer(run: (done: (chunks: Uint8Array[] | Error) => void) => void): Promise<Uint8Array[]> {
  return new Promise((resolve, reject) => run((result) => (result instanceof Error ? reject(result) : resolve(result))));
}

/**
 * `encoding`: the thread Opus and MP3 are encoded on. `knownLength`: samples of the whole reply, when all
 * audio exists before the first byte (a WAV then gets exact sizes).
 */
export function createSpeechEncoder(format: SpeechFormat, encoding: EncodingThread, knownLength?: number): SpeechEncoder {
  const contentType = CONTENT_TYPES[format];
  const none = new Uint8Array(0);
  const nothing = async () => none;
  switch (format) {
    case 'pcm':
      return { contentType, start: () => none, encode: async (pcm) => pcm16Bytes(pcm).slice(), end: nothing, close: () => {} };
    case 'wav':
      return {
        contentType,
        start: () => wavHeader16(VOICE_SAMPLE_RATE, knownLength === undefined ? WAV_STREAMED_SIZE : knownLength * 2),
        encode: async (pcm) => pcm16Bytes(pcm).slice(),
        end: nothing,
        close: () => {},
      };
    case 'mp3': {
      const stream = encoding.openMp3();
      return {
        contentType,
        start: () => none,
        encode: async (pcm) => Buffer.concat(await answer((done) => stream.push(pcm, done))),
        end: async () => {
          try {
            return Buffer.concat(await answer((done) => stream.flush(done)));
          } finally {
            stream.close();
          }
        },
        close: () => stream.close(),
      };
    }
    case 'opus': {
      const stream = encoding.open(VOICE_SAMPLE_RATE);
      const ogg = new OggOpusWriter(VOICE_SAMPLE_RATE, (VOICE_SAMPLE_RATE * OPUS_FRAME_MS) / 1000);
      let samples = 0;
      return {
        contentType,
        start: () => ogg.header(),
        encode: async (pcm) => {
          samples += pcm.length;
          return ogg.pages(await answer((done) => stream.push(pcm, done)));
        },
        end: async () => {
          try {
            return ogg.end(await answer((done) => stream.flush(done)), samples);
          } finally {
            stream.close();
          }
        },
        close: () => stream.close(),
      };
    }
  }
}
