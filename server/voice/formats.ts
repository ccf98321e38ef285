/**
 * The file formats REST speech comes in (`/v1/audio/speech` response_format, chat completions'
 * `audio.format`), each as a streaming encoder: bytes for a reply's audio as it is made, so a
 * streamed response carries sound before the whole text is spoken. OpenAI also offers aac and
 * flac; no encoder for them is at hand on npm, so they are refused with the list of these.
 */
import type { SPEECH_FORMATS } from '../../protocol/openai.js';
import { Mp3Encoder } from '../audio/mp3-encoder.js';
import { OggOpusWriter } from '../audio/ogg-writer.js';
import { OpusEncoder } from '../audio/opus-encoder.js';
import { pcm16Bytes, WAV_STREAMED_SIZE, wavHeader16 } from '../audio/wav.js';
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
  encode(pcm: Pcm24k): Uint8Array;
  /** The rest of the file; the encoder is done after it. */
  end(): Uint8Array;
}

/** `knownLength`: samples of the whole reply, when all audio exists before the first byte (a WAV then gets exact sizes). */
export async function createSpeechEncoder(format: SpeechFormat, knownLength?: number): Promise<SpeechEncoder> {
  const contentType = CONTENT_TYPES[format];
  const none = new Uint8Array(0);
  switch (format) {
    case 'pcm':
      return { contentType, start: () => none, encode: (pcm) => pcm16Bytes(pcm).slice(), end: () => none };
    case 'wav':
      return {
        contentType,
        start: () => wavHeader16(VOICE_SAMPLE_RATE, knownLength === undefined ? WAV_STREAMED_SIZE : knownLength * 2),
        encode: (pcm) => pcm16Bytes(pcm).slice(),
        end: () => none,
      };
    case 'mp3': {
      const mp3 = await Mp3Encoder.create();
      return { contentType, start: () => none, encode: (pcm) => mp3.encode(pcm), end: () => mp3.end() };
    }
    case 'opus': {
      const opus = new OpusEncoder(VOICE_SAMPLE_RATE);
      const ogg = new OggOpusWriter(VOICE_SAMPLE_RATE, opus.frameSamples);
      let samples = 0;
      return {
        contentType,
        start: () => ogg.header(),
        encode: (pcm) => ((samples += pcm.length), ogg.pages(opus.encode(pcm))),
        end: () => {
          const last = ogg.end(opus.flush(), samples);
          opus.close();
          return last;
        },
      };
    }
  }
}
