import { EarshotError } from '../../protocol/errors.js';
import { floatToPcm16 } from './pcm16.js';

/**
 * RIFF/WAVE reader for uploaded clips: integer PCM (8-bit unsigned, 16/24/32-bit signed),
 * IEEE float (32/64-bit), plain or WAVE_FORMAT_EXTENSIBLE. Streamed WAVs (ffmpeg or espeak
 * writing to a pipe) cannot seek back to fix the data size, so a size of 0, 0xFFFFFFFF or
 * one past the end of the file means "the rest of the file".
 */
export interface DecodedAudio {
  /** One array per channel, samples in [-1, 1] (float files may exceed it). */
  channels: Float32Array[];
  sampleRate: number;
}

const WAVE_FORMAT_PCM = 0x0001;
const WAVE_FORMAT_IEEE_FLOAT = 0x0003;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;
const MAX_CHANNELS = 16;
/** Rates outside this range are not audio a speech model can use, and odd huge rates make costly resampler tables. */
const MIN_RATE = 1000;
const MAX_RATE = 192_000;

interface Format {
  float: boolean;
  channels: number;
  sampleRate: number;
  bytesPerSample: number;
}

function bad(message: string): EarshotError {
  return new EarshotError('bad_audio', `WAV: ${message}`);
}

function fourcc(view: DataView, at: number): string {
  return String.fromCharCode(view.getUint8(at), view.getUint8(at + 1), view.getUint8(at + 2), view.getUint8(at + 3));
}

function parseFmt(view: DataView, at: number, size: number): Format {
  if (size < 16) throw bad(`fmt chunk is ${size} bytes, expected at least 16`);
  let tag = view.getUint16(at, true);
  const channels = view.getUint16(at + 2, true);
  const sampleRate = view.getUint32(at + 4, true);
  const blockAlign = view.getUint16(at + 12, true);
  const bits = view.getUint16(at + 14, true);
  if (tag === WAVE_FORMAT_EXTENSIBLE) {
    // cbSize, validBits, channelMask, then a GUID whose first two bytes are the real format tag.
    if (size < 40) throw bad(`WAVE_FORMAT_EXTENSIBLE fmt chunk is ${size} bytes, expected 40`);
    tag = view.getUint16(at + 24, true);
  }
  if (tag !== WAVE_FORMAT_PCM && tag !== WAVE_FORMAT_IEEE_FLOAT) throw bad(`format tag 0x${tag.toString(16)} is not supported (only PCM and IEEE float)`);
  const float = tag === WAVE_FORMAT_IEEE_FLOAT;
  const supported = float ? bits === 32 || bits === 64 : bits === 8 || bits === 16 || bits === 24 || bits === 32;
  if (!supported) throw bad(`${bits}-bit ${float ? 'float' : 'integer'} samples are not supported`);
  if (channels < 1 || channels > MAX_CHANNELS) throw bad(`${channels} channels is not supported (1..${MAX_CHANNELS})`);
  if (sampleRate < MIN_RATE || sampleRate > MAX_RATE) throw bad(`sample rate ${sampleRate} is not supported (${MIN_RATE}..${MAX_RATE} Hz)`);
  const bytesPerSample = bits / 8;
  if (blockAlign !== channels * bytesPerSample) throw bad(`block align ${blockAlign} does not match ${channels} channels of ${bits} bits`);
  return { float, channels, sampleRate, bytesPerSample };
}

function sampleReader(format: Format, view: DataView): (at: number) => number {
  if (format.float) return format.bytesPerSample === 4 ? (at) => view.getFloat32(at, true) : (at) => view.getFloat64(at, true);
  switch (format.bytesPerSample) {
    case 1:
      return (at) => (view.getUint8(at) - 128) / 128;
    case 2:
      return (at) => view.getInt16(at, true) / 32768;
    case 3:
      return (at) => ((view.getInt8(at + 2) << 16) | (view.getUint8(at + 1) << 8) | view.getUint8(at)) / 8388608;
    default:
      return (at) => view.getInt32(at, true) / 2147483648;
  }
}

function readSamples(format: Format, view: DataView, start: number, end: number): Float32Array[] {
  const frameBytes = format.channels * format.bytesPerSample;
  const frames = Math.floor((end - start) / frameBytes);
  if (frames === 0) throw bad('the data chunk holds no samples');
  const read = sampleReader(format, view);
  const channels = Array.from({ length: format.channels }, () => new Float32Array(frames));
  for (let c = 0; c < format.channels; c++) {
    const out = channels[c]!;
    let at = start + c * format.bytesPerSample;
    for (let i = 0; i < frames; i++, at += frameBytes) out[i] = read(at);
  }
  return channels;
}

export function decodeWav(bytes: Uint8Array): DecodedAudio {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 12) throw bad(`file is ${bytes.length} bytes, too short for a RIFF header`);
  const riff = fourcc(view, 0);
  if (riff === 'RIFX' || riff === 'RF64') throw bad(`${riff} files are not supported (only little-endian RIFF)`);
  if (riff !== 'RIFF' || fourcc(view, 8) !== 'WAVE') throw bad('not a RIFF/WAVE file');
  let format: Format | undefined;
  let pos = 12;
  while (pos + 8 <= bytes.length) {
    const id = fourcc(view, pos);
    const size = view.getUint32(pos + 4, true);
    const body = pos + 8;
    const available = bytes.length - body;
    if (id === 'data') {
      if (!format) throw bad('data chunk comes before the fmt chunk');
      const streamed = size === 0 || size === 0xffffffff || size > available;
      return { channels: readSamples(format, view, body, streamed ? bytes.length : body + size), sampleRate: format.sampleRate };
    }
    if (size > available) throw bad(`"${id}" chunk of ${size} bytes runs past the end of the file`);
    if (id === 'fmt ') format = parseFmt(view, body, size);
    // Chunks are word-aligned: an odd-sized chunk is followed by one pad byte.
    pos = body + size + (size & 1);
  }
  throw bad(format ? 'no data chunk' : 'no fmt chunk');
}

/** Data size for a WAV written while its length is unknown (streamed speech); readers take it as "to the end". */
export const WAV_STREAMED_SIZE = 0xffffffff;

/** The 44-byte header of a mono 16-bit PCM WAV holding `dataBytes` of samples (WAV_STREAMED_SIZE when unknown). */
export function wavHeader16(sampleRate: number, dataBytes: number): Uint8Array {
  const out = new Uint8Array(44);
  const view = new DataView(out.buffer);
  const ascii = (at: number, text: string) => {
    for (let i = 0; i < text.length; i++) out[at + i] = text.charCodeAt(i);
  };
  ascii(0, 'RIFF');
  view.setUint32(4, dataBytes === WAV_STREAMED_SIZE ? WAV_STREAMED_SIZE : 36 + dataBytes, true);
  ascii(8, 'WAVEfmt ');
  view.setUint32(16, 16, true);
  view.setUint16(20, WAVE_FORMAT_PCM, true);
  view.setUint16(22, 1, true);
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * 2, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  ascii(36, 'data');
  view.setUint32(40, dataBytes, true);
  return out;
}

/** PCM16 samples as little-endian bytes: a view, no copy (every platform Node supports is little-endian). */
export function pcm16Bytes(pcm: Int16Array): Uint8Array {
  return new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength);
}

/** Mono 16-bit PCM WAV: what upstream servers accept for `input_audio`. */
export function encodeWav16(samples: Float32Array, sampleRate: number): Uint8Array {
  const pcm = floatToPcm16(samples);
  const out = new Uint8Array(44 + pcm.length * 2);
  out.set(wavHeader16(sampleRate, pcm.length * 2));
  out.set(pcm16Bytes(pcm), 44);
  return out;
}
