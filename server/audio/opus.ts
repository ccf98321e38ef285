import { OpusDecoder } from 'opus-decoder';
import { EarshotError } from '../../protocol/errors.js';
import { OPUS_RATES } from '../../protocol/native.js';
import type { Decoder } from './decoder.js';
import { SAMPLE_RATE, type Pcm16k } from './format.js';

/** Longest Opus packet is 120 ms; at 16 kHz that is 1920 samples. */
const MAX_PACKET_SAMPLES = 1920;
const MAX_PACKET_BYTES = 1275 * 3;

/**
 * How many mono streams one shared WASM instance serves over its life. Its heap is fixed
 * (28 MB, no growth): a mono libopus state takes 41.6 kB and each create/destroy leaves about
 * 1.3 kB behind (measured on 0.7.12), so 384 streams stay under 17 MB and a create never meets
 * a full heap, whose failures libopus does not always report.
 */
const HOST_STREAMS = 384;

/**
 * opus-decoder 0.7.12's WASM exports (the version is pinned in package.json). Its public
 * decodeFrame() allocates two Float32Arrays, four arrays and two objects per packet and copies
 * the samples twice (about 15% of the server's CPU under `npm run bench -- --profile`).
 */
interface OpusWasm {
  HEAP: ArrayBuffer;
  malloc(bytes: number): number;
  opus_frame_decoder_create(rate: number, channels: number, streams: number, coupled: number, mapping: number, preSkip: number, forceStereo: number): number;
  opus_frame_decode_float_deinterleaved(state: number, input: number, length: number, output: number): number;
  opus_frame_decoder_destroy(state: number): void;
}

interface OpusInternals {
  _decoder: number;
  _input: { ptr: number; buf: Uint8Array };
  _output: { ptr: number; buf: Float32Array };
  _common: { wasm: OpusWasm };
}

function internalsOf(decoder: OpusDecoder<16000>): OpusInternals {
  const d = decoder as unknown as Partial<OpusInternals>;
  const wasm = d._common?.wasm;
  if (
    typeof d._decoder === 'number' &&
    d._input?.buf instanceof Uint8Array &&
    d._output?.buf instanceof Float32Array &&
    wasm?.HEAP instanceof ArrayBuffer &&
    typeof wasm.malloc === 'function' &&
    typeof wasm.opus_frame_decoder_create === 'function' &&
    typeof wasm.opus_frame_decode_float_deinterleaved === 'function' &&
    typeof wasm.opus_frame_decoder_destroy === 'function'
  )
    return d as OpusInternals;
  throw new EarshotError('internal', 'the installed opus-decoder lacks the WASM exports Earshot decodes with; install the version pinned in package.json (npm ci)', { fatal: true });
}

/**
 * One opus-decoder WASM instance holding the decoder states of many mono streams, with one
 * input and one output buffer they share (decoding is synchronous). opus-decoder gives every
 * stream an instance of its own; with 400 streams that costs 34.5 µs per frame against 27 µs
 * for the same streams in one to four shared instances (bench/RESULTS.md). Hosts are per
 * thread (module state); a used-up host is garbage once its last stream is closed and dropped.
 * Stereo states sharing an instance decode slightly differently from a state alone (measured;
 * mono ones are bit-identical, test/unit/opus.test.ts), so a stereo stream gets an instance of
 * its own; browsers' microphones send mono.
 */
class OpusHost {
  private static sharedMono: Promise<OpusHost> | undefined;
  private streams = 1;

  private constructor(
    readonly wasm: OpusWasm,
    readonly input: { ptr: number; buf: Uint8Array },
    readonly output: { ptr: number; buf: Float32Array },
    /** The state opus-decoder created with the instance: the first stream's. */
    private readonly ownState: number,
    /** The mono channel mapping [0] in WASM memory; libopus copies it at create. */
    private readonly monoMapping: number,
  ) {}

  /** A fresh decoder state for a stream, and the instance it lives in. */
  static async state(channels: 1 | 2): Promise<{ host: OpusHost; state: number }> {
    if (channels === 2) {
      const host = await OpusHost.start(2);
      return { host, state: host.ownState };
    }
    for (;;) {
      const pending = OpusHost.sharedMono;
      if (!pending) {
        const started = (OpusHost.sharedMono = OpusHost.start(1));
        const host = await started;
        return { host, state: host.ownState };
      }
      const host = await pending;
      if (host.streams < HOST_STREAMS) {
        host.streams++;
        const state = host.wasm.opus_frame_decoder_create(SAMPLE_RATE, 1, 1, 0, host.monoMapping, 0, 0);
        if (state === 0) throw new EarshotError('internal', 'libopus could not create a decoder state', { fatal: true });
        return { host, state };
      }
      if (OpusHost.sharedMono === pending) OpusHost.sharedMono = undefined;
    }
  }

  private static async start(channels: 1 | 2): Promise<OpusHost> {
    const decoder = new OpusDecoder({ sampleRate: SAMPLE_RATE as 16000, channels });
    await decoder.ready;
    const { _common: { wasm }, _input, _output, _decoder } = internalsOf(decoder);
    const monoMapping = wasm.malloc(1);
    new Uint8Array(wasm.HEAP, monoMapping, 1)[0] = 0;
    return new OpusHost(wasm, _input, _output, _decoder, monoMapping);
  }
}

/**
 * Opus packets decoded by libopus (WASM) straight to 16 kHz mono: libopus resamples
 * internally, which is cheaper than decoding at 48 kHz and resampling here.
 */
export class OpusPacketDecoder implements Decoder {
  private readonly scratch = new Float32Array(MAX_PACKET_SAMPLES);
  /** Views for the last sample count seen (every packet of a stream usually has the same), so a frame allocates nothing. */
  private viewCount = 0;
  private inView: Float32Array<ArrayBufferLike> = this.scratch;
  private outView = this.scratch;
  private closed = false;

  private constructor(
    private readonly host: OpusHost,
    private readonly state: number,
    private readonly channels: number,
  ) {}

  /** The clientRate is what the client encoded at; Opus decodes to any rate, so it is only checked. */
  static async create(clientRate: number, channels: 1 | 2): Promise<OpusPacketDecoder> {
    if (!(OPUS_RATES as readonly number[]).includes(clientRate))
      throw new EarshotError('unsupported', `opus sample rate ${clientRate} is not supported (use ${OPUS_RATES.join(', ')})`, { fatal: true });
    const { host, state } = await OpusHost.state(channels);
    return new OpusPacketDecoder(host, state, channels);
  }

  decode(bytes: Uint8Array, start = 0, end = bytes.length): Pcm16k {
    const length = end - start;
    if (length <= 0 || length > MAX_PACKET_BYTES) throw new EarshotError('bad_audio', `opus packet of ${Math.max(0, length)} bytes is not valid`);
    if (this.closed) throw new EarshotError('internal', 'opus decoder used after close');
    const { input, output, wasm } = this.host;
    // An element loop, not buf.set(bytes.subarray(...)): no view per packet (a packet is tens of bytes).
    const buf = input.buf;
    for (let i = 0; i < length; i++) buf[i] = bytes[start + i]!;
    const count = wasm.opus_frame_decode_float_deinterleaved(this.state, input.ptr, length, output.ptr);
    if (count <= 0) throw new EarshotError('bad_audio', `corrupt opus packet: ${count < 0 ? `libopus error ${count}` : 'no samples decoded'}`);
    const samples = Math.min(count, MAX_PACKET_SAMPLES);
    const decoded = output.buf;
    if (samples !== this.viewCount) {
      this.viewCount = samples;
      this.inView = decoded.subarray(0, samples);
      this.outView = this.scratch.subarray(0, samples);
    }
    const out = this.outView;
    // Channels are planar, `count` samples apart.
    if (this.channels === 1) out.set(this.inView);
    else for (let i = 0; i < samples; i++) out[i] = (decoded[i]! + decoded[count + i]!) * 0.5;
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.host.wasm.opus_frame_decoder_destroy(this.state);
  }
}
