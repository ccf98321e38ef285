import { OpusDecoder } from 'opus-decoder';
import { EarshotError } from '../../protocol/errors.js';
import { OPUS_RATES } from '../../protocol/native.js';
import { SAMPLE_RATE, type Pcm16k } from '../engines/types.js';
import type { Decoder } from './decoder.js';

/** Longest Opus packet is 120 ms; at 16 kHz that is 1920 samples. */
const MAX_PACKET_SAMPLES = 1920;
const MAX_PACKET_BYTES = 1275 * 3;

/**
 * Opus packets decoded by libopus (WASM) straight to 16 kHz mono: libopus resamples
 * internally, which is cheaper than decoding at 48 kHz and resampling here.
 */
export class OpusPacketDecoder implements Decoder {
  private readonly decoder: OpusDecoder<16000>;
  private readonly scratch = new Float32Array(MAX_PACKET_SAMPLES);

  private constructor(decoder: OpusDecoder<16000>) {
    this.decoder = decoder;
  }

  /** The clientRate is what the client encoded at; Opus decodes to any rate, so it is only checked. */
  static async create(clientRate: number, channels: 1 | 2): Promise<OpusPacketDecoder> {
    if (!(OPUS_RATES as readonly number[]).includes(clientRate))
      throw new EarshotError('unsupported', `opus sample rate ${clientRate} is not supported (use ${OPUS_RATES.join(', ')})`, { fatal: true });
    const decoder = new OpusDecoder({ sampleRate: SAMPLE_RATE as 16000, channels });
    await decoder.ready;
    return new OpusPacketDecoder(decoder);
  }

  decode(packet: Uint8Array): Pcm16k {
    if (packet.length === 0 || packet.length > MAX_PACKET_BYTES) throw new EarshotError('bad_audio', `opus packet of ${packet.length} bytes is not valid`);
    let decoded;
    try {
      decoded = this.decoder.decodeFrame(packet);
    } catch (err) {
      throw new EarshotError('bad_audio', `corrupt opus packet: ${(err as Error).message}`);
    }
    if (decoded.errors.length > 0 || decoded.samplesDecoded === 0)
      throw new EarshotError('bad_audio', `corrupt opus packet: ${decoded.errors[0]?.message ?? 'no samples decoded'}`);
    const channels = decoded.channelData;
    const count = Math.min(decoded.samplesDecoded, MAX_PACKET_SAMPLES);
    const out = this.scratch;
    if (channels.length === 1) out.set(channels[0]!.subarray(0, count));
    else for (let i = 0; i < count; i++) out[i] = (channels[0]![i]! + channels[1]![i]!) * 0.5;
    return out.subarray(0, count);
  }

  close(): void {
    this.decoder.free();
  }
}
