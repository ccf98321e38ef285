/**
 * Audio sources for the client: a WAV file (PCM16), an Ogg Opus file, or raw PCM16 from a
 * stream, each cut into packets the native protocol takes, with each packet's duration so a
 * sender can pace them in real time.
 */
import type { Readable } from 'node:stream';
import { OPUS_RATES, PCM_RATES } from '../../protocol/native.js';
import { parseOggOpus } from './ogg.js';

export const FRAME_MS = 20;

export interface AudioPacket {
  /** Valid until the next packet is pulled (sources reuse their buffers). */
  payload: Uint8Array;
  durationMs: number;
}

export interface AudioSource {
  codec: 'opus' | 'pcm16';
  sampleRate: number;
  channels: 1 | 2;
  packets: AsyncIterable<AudioPacket>;
}

export class AudioFormatError extends Error {
  override name = 'AudioFormatError';
}

const WAVE_FORMAT_PCM = 1;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;

function checkPcmRate(rate: number, what: string): void {
  if (!(PCM_RATES as readonly number[]).includes(rate))
    throw new AudioFormatError(`${what} sample rate ${rate} Hz is not supported; use ${PCM_RATES.join(', ')} (e.g. sox in.wav -r 16000 out.wav)`);
}

function checkChannels(channels: number, what: string): 1 | 2 {
  if (channels !== 1 && channels !== 2) throw new AudioFormatError(`${what} has ${channels} channels; mono or stereo only`);
  return channels;
}

export interface WavInfo {
  sampleRate: number;
  channels: 1 | 2;
  /** Interleaved PCM16 little-endian bytes. */
  data: Uint8Array;
}

/** Reads a 16-bit PCM WAV; tolerates streaming headers whose data size runs past the file. */
export function parseWav(bytes: Uint8Array): WavInfo {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ascii = (at: number) => String.fromCharCode(bytes[at]!, bytes[at + 1]!, bytes[at + 2]!, bytes[at + 3]!);
  if (bytes.length < 12 || ascii(0) !== 'RIFF' || ascii(8) !== 'WAVE') throw new AudioFormatError('not a WAV file');
  let format: { sampleRate: number; channels: 1 | 2 } | undefined;
  for (let pos = 12; pos + 8 <= bytes.length; ) {
    const id = ascii(pos);
    const size = view.getUint32(pos + 4, true);
    if (id === 'fmt ') {
      const tag = view.getUint16(pos + 8, true);
      const bits = view.getUint16(pos + 22, true);
      const pcm = tag === WAVE_FORMAT_PCM || (tag === WAVE_FORMAT_EXTENSIBLE && size >= 40 && view.getUint16(pos + 32, true) === WAVE_FORMAT_PCM);
      if (!pcm || bits !== 16) throw new AudioFormatError(`WAV is not 16-bit PCM (format ${tag}, ${bits} bits); convert it, e.g. sox in.wav -b 16 out.wav`);
      const sampleRate = view.getUint32(pos + 12, true);
      checkPcmRate(sampleRate, 'WAV');
      format = { sampleRate, channels: checkChannels(view.getUint16(pos + 10, true), 'WAV') };
    } else if (id === 'data') {
      if (!format) throw new AudioFormatError('WAV data chunk comes before its fmt chunk');
      const frameBytes = 2 * format.channels;
      const end = Math.min(bytes.length, pos + 8 + size);
      const length = end - (pos + 8);
      return { ...format, data: bytes.subarray(pos + 8, pos + 8 + length - (length % frameBytes)) };
    }
    pos += 8 + size + (size & 1);
  }
  throw new AudioFormatError('WAV has no data chunk');
}

/** PCM16 bytes cut into 20 ms packets (views, no copies); the last one may be shorter. */
async function* pcmPackets(data: Uint8Array, sampleRate: number, channels: number): AsyncIterable<AudioPacket> {
  const bytesPerMs = (sampleRate * channels * 2) / 1000;
  const frameBytes = bytesPerMs * FRAME_MS;
  for (let at = 0; at < data.length; at += frameBytes) {
    const payload = data.subarray(at, Math.min(data.length, at + frameBytes));
    yield { payload, durationMs: payload.length / bytesPerMs };
  }
}

const SILK_MS = [10, 20, 40, 60];
const CELT_MS = [2.5, 5, 10, 20];

/** An Opus packet's duration from its TOC byte (RFC 6716 section 3.1). */
export function opusPacketMs(packet: Uint8Array): number {
  const toc = packet[0] ?? 0;
  const config = toc >> 3;
  const frameMs = config < 12 ? SILK_MS[config & 3]! : config < 16 ? (config & 1 ? 20 : 10) : CELT_MS[config & 3]!;
  const code = toc & 3;
  const frames = code === 0 ? 1 : code === 3 ? (packet[1] ?? 0) & 0x3f : 2;
  return frames * frameMs;
}

export function wavSource(bytes: Uint8Array): AudioSource {
  const wav = parseWav(bytes);
  return { codec: 'pcm16', sampleRate: wav.sampleRate, channels: wav.channels, packets: pcmPackets(wav.data, wav.sampleRate, wav.channels) };
}

export function oggOpusSource(bytes: Uint8Array): AudioSource {
  const ogg = parseOggOpus(bytes);
  async function* packets(): AsyncIterable<AudioPacket> {
    for (const payload of ogg.packets) yield { payload, durationMs: opusPacketMs(payload) };
  }
  // Opus packets carry no rate of their own; 48 kHz is the codec's native rate.
  return { codec: 'opus', sampleRate: OPUS_RATES[OPUS_RATES.length - 1]!, channels: checkChannels(ogg.channels, 'Ogg Opus stream'), packets: packets() };
}

/** Sniffs the container: WAV (RIFF) or Ogg Opus (OggS). */
export function fileSource(bytes: Uint8Array): AudioSource {
  const magic = String.fromCharCode(...bytes.subarray(0, 4));
  if (magic === 'RIFF') return wavSource(bytes);
  if (magic === 'OggS') return oggOpusSource(bytes);
  throw new AudioFormatError('unknown audio file: expected WAV (16-bit PCM) or Ogg Opus');
}

/** Raw PCM16 little-endian from a stream, re-cut into 20 ms packets through one buffer. */
export function pcmStreamSource(stream: Readable, sampleRate: number, channels: 1 | 2 = 1): AudioSource {
  checkPcmRate(sampleRate, 'PCM');
  const frameBytes = ((sampleRate * channels * 2) / 1000) * FRAME_MS;
  async function* packets(): AsyncIterable<AudioPacket> {
    const frame = new Uint8Array(frameBytes);
    let filled = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      for (let at = 0; at < chunk.length; ) {
        const n = Math.min(frameBytes - filled, chunk.length - at);
        frame.set(chunk.subarray(at, at + n), filled);
        filled += n;
        at += n;
        if (filled === frameBytes) {
          yield { payload: frame, durationMs: FRAME_MS };
          filled = 0;
        }
      }
    }
    const tail = filled - (filled % (2 * channels));
    if (tail > 0) yield { payload: frame.subarray(0, tail), durationMs: (FRAME_MS * tail) / frameBytes };
  }
  return { codec: 'pcm16', sampleRate, channels, packets: packets() };
}
