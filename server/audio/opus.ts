import { OpusDecoder } from 'opus-decoder';
import { EarshotError } from '../../protocol/errors.js';
import { OPUS_RATES } from '../../protocol/native.js';
import { SAMPLE_RATE, type Pcm16k } from '../engines/types.js';
import type { Decoder } from './decoder.js';

/** Longest Opus packet is 120 ms; at 16 kHz that is 1920 samples. */
const MAX_PACKET_SAMPLES = 1920;
const MAX_PACKET_BYTES = 1275 * 3;

/**
 * opus-decoder 0.7's internals, used to decode straight into its WASM output buffer: its
 * public decodeFrame() allocates two Float32Arrays, four arrays and two objects per packet
 * and copies the samples twice. Under `npm run bench -- --profile` that wrapper and the GC
 * it caused were about 15% of the server's CPU (see bench/RESULTS.md). Checked at creation;
 * a build without them falls back to decodeFrame().
 */
interface OpusInternals {
  _decoder: number;
  _input: { ptr: number; buf: Uint8Array };
  _output: { ptr: number; buf: Float32Array };
  _common: { wasm: { opus_frame_decode_float_deinterleaved(decoder: number, input: number, length: number, output: number): number } };
}

function internalsOf(decoder: OpusDecoder<16000>): OpusInternals | undefined {
  const d = decoder as unknown as Partial<OpusInternals>;
  const ok =
    typeof d._decoder === 'number' &&
    d._input?.buf instanceof Uint8Array &&
    d._output?.buf instanceof Float32Array &&
    typeof d._common?.wasm?.opus_frame_decode_float_deinterleaved === 'function';
  return ok ? (d as OpusInternals) : undefined;
}

/**
 * Opus packets decoded by libopus (WASM) straight to 16 kHz mono: libopus resamples
 * internally, which is cheaper than decoding at 48 kHz and resampling here.
 */
export class OpusPacketDecoder implements Decoder {
  private readonly decoder: OpusDecoder<16000>;
  private readonly internals: OpusInternals | undefined;
  private readonly channels: number;
  private readonly scratch = new Float32Array(MAX_PACKET_SAMPLES);
  /** Views for the last sample count seen (every packet of a stream usually has the same), so a frame allocates nothing. */
  private viewCount = 0;
  private inView: Float32Array<ArrayBufferLike> = this.scratch;
  private outView = this.scratch;

  private constructor(decoder: OpusDecoder<16000>, channels: number) {
    this.decoder = decoder;
    this.channels = channels;
    this.internals = internalsOf(decoder);
  }

  /** The clientRate is what the client encoded at; Opus decodes to any rate, so it is only checked. */
  static async create(clientRate: number, channels: 1 | 2): Promise<OpusPacketDecoder> {
    if (!(OPUS_RATES as readonly number[]).includes(clientRate))
      throw new EarshotError('unsupported', `opus sample rate ${clientRate} is not supported (use ${OPUS_RATES.join(', ')})`, { fatal: true });
    const decoder = new OpusDecoder({ sampleRate: SAMPLE_RATE as 16000, channels });
    await decoder.ready;
    return new OpusPacketDecoder(decoder, channels);
  }

  decode(packet: Uint8Array): Pcm16k {
    if (packet.length === 0 || packet.length > MAX_PACKET_BYTES) throw new EarshotError('bad_audio', `opus packet of ${packet.length} bytes is not valid`);
    if (this.internals) return this.decodeDirect(this.internals, packet);
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

  private decodeDirect(d: OpusInternals, packet: Uint8Array): Pcm16k {
    d._input.buf.set(packet);
    const count = d._common.wasm.opus_frame_decode_float_deinterleaved(d._decoder, d._input.ptr, packet.length, d._output.ptr);
    if (count <= 0) throw new EarshotError('bad_audio', `corrupt opus packet: ${count < 0 ? `libopus error ${count}` : 'no samples decoded'}`);
    const samples = Math.min(count, MAX_PACKET_SAMPLES);
    const output = d._output.buf;
    if (samples !== this.viewCount) {
      this.viewCount = samples;
      this.inView = output.subarray(0, samples);
      this.outView = this.scratch.subarray(0, samples);
    }
    const out = this.outView;
    // Channels are planar, `count` samples apart.
    if (this.channels === 1) out.set(this.inView);
    else for (let i = 0; i < samples; i++) out[i] = (output[i]! + output[count + i]!) * 0.5;
    return out;
  }

  close(): void {
    this.decoder.free();
  }
}
