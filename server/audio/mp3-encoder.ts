/**
 * MP3 encoding for spoken replies through LAME in WASM (wasm-media-encoders: measured the
 * cheapest MP3 encoder on npm, ~8-11 ms CPU per second of audio). 24 kHz mono in, MPEG-2
 * layer III frames out as LAME completes them.
 */
import { createMp3Encoder } from 'wasm-media-encoders';
import { pcm16ToFloat } from './pcm16.js';

type LameEncoder = Awaited<ReturnType<typeof createMp3Encoder>>;
/** kbit/s: plenty for one 24 kHz voice. */
const BITRATE = 48;

export class Mp3Encoder {
  private constructor(private readonly lame: LameEncoder) {}

  static async create(sampleRate: 24_000 = 24_000): Promise<Mp3Encoder> {
    const lame = await createMp3Encoder();
    lame.configure({ channels: 1, sampleRate, bitrate: BITRATE });
    return new Mp3Encoder(lame);
  }

  /** The returned bytes are a copy (LAME's output buffer is reused on the next call). */
  encode(pcm24k: Int16Array): Uint8Array {
    return this.lame.encode([pcm16ToFloat(pcm24k)]).slice();
  }

  end(): Uint8Array {
    return this.lame.finalize().slice();
  }
}
