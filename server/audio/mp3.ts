import { MPEGDecoder } from 'mpg123-decoder';
import { EarshotError } from '../../protocol/errors.js';
import type { DecodedAudio } from './wav.js';

/**
 * Whole-file MPEG audio (MP3, also layer I/II) through mpg123 in WASM. Gapless mode (the
 * default) trims the encoder delay and padding that LAME records, so durations match the
 * source. A decoder is made per clip: instantiation costs ~20 ms, small next to an upload,
 * and no state can leak from one client's file into another's.
 */
export async function decodeMp3(bytes: Uint8Array): Promise<DecodedAudio> {
  const decoder = new MPEGDecoder();
  await decoder.ready;
  try {
    const result = decoder.decode(bytes);
    if (result.errors.length > 0) throw new EarshotError('bad_audio', `MP3: ${result.errors[0]!.message}`);
    if (result.samplesDecoded === 0 || result.sampleRate === 0) throw new EarshotError('bad_audio', 'MP3: no MPEG audio frames found');
    return { channels: result.channelData.map((c) => c.subarray(0, result.samplesDecoded)), sampleRate: result.sampleRate };
  } finally {
    decoder.free();
  }
}
