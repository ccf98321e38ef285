/**
 * Audio sources for the client: a WAV or MP3 file (decoded by the server's decoders, sent as
 * PCM16 16 kHz mono), an Ogg Opus file (its packets as they are), or raw PCM16 from a stream,
 * each cut into packets the native protocol takes, with each packet's duration so a sender
 * can pace them in real time.
 */
import type { Readable } from 'node:stream';
import { OPUS_RATES, PCM_RATES } from '../../protocol/native.js';
import { EarshotError } from '../../protocol/errors.js';
import { decodeClip, sniffClipFormat, type ClipFormat } from '../../server/audio/clip.js';
import { SAMPLE_RATE } from '../../server/audio/format.js';
import { floatToPcm16 } from '../../server/audio/pcm16.js';
import { parseOggOpus, type OggOpus } from './ogg.js';

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

/** What fileSource() reads; said in every refusal. */
const ACCEPTED = 'earshot reads WAV (PCM 8/16/24/32-bit or float 32/64-bit, any rate, any channels), MP3 and Ogg Opus';

function checkPcmRate(rate: number, what: string): void {
  if (!(PCM_RATES as readonly number[]).includes(rate))
    throw new AudioFormatError(`${what} sample rate ${rate} Hz is not supported; use ${PCM_RATES.join(', ')} (e.g. sox in.wav -r 16000 out.wav)`);
}

function checkChannels(channels: number, what: string): 1 | 2 {
  if (channels !== 1 && channels !== 2) throw new AudioFormatError(`${what} has ${channels} channels; mono or stereo only`);
  return channels;
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

/**
 * A WAV or MP3 file decoded with the server's own decoders (server/audio: the formats REST
 * takes) to what every server accepts on /v1/stream: PCM16 at 16 kHz mono.
 */
export async function clipSource(bytes: Uint8Array, format: ClipFormat): Promise<AudioSource> {
  let samples: Float32Array;
  try {
    samples = await decodeClip(bytes, format);
  } catch (err) {
    if (err instanceof EarshotError) throw new AudioFormatError(`${err.message} (${ACCEPTED})`);
    throw err;
  }
  const pcm = floatToPcm16(samples);
  const data = new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  return { codec: 'pcm16', sampleRate: SAMPLE_RATE, channels: 1, packets: pcmPackets(data, SAMPLE_RATE, 1) };
}

export function oggOpusSource(bytes: Uint8Array): AudioSource {
  let ogg: OggOpus;
  try {
    ogg = parseOggOpus(bytes);
  } catch (err) {
    throw new AudioFormatError(`Ogg: ${(err as Error).message} (${ACCEPTED})`);
  }
  async function* packets(): AsyncIterable<AudioPacket> {
    for (const payload of ogg.packets) yield { payload, durationMs: opusPacketMs(payload) };
  }
  // Opus packets carry no rate of their own; 48 kHz is the codec's native rate.
  return { codec: 'opus', sampleRate: OPUS_RATES[OPUS_RATES.length - 1]!, channels: checkChannels(ogg.channels, 'Ogg Opus stream'), packets: packets() };
}

/** Containers people try that earshot does not read, by their first bytes, for a precise refusal. */
const KNOWN_OTHERS: [string, (bytes: Uint8Array) => boolean][] = [
  ['FLAC', (b) => ascii(b, 0, 4) === 'fLaC'],
  ['MP4/M4A (AAC)', (b) => ascii(b, 4, 8) === 'ftyp'],
  ['WebM/Matroska', (b) => b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3],
  ['AIFF', (b) => ascii(b, 0, 4) === 'FORM'],
];

function ascii(bytes: Uint8Array, from: number, to: number): string {
  return String.fromCharCode(...bytes.subarray(from, to));
}

/** Sniffs the container: Ogg Opus is sent as it is; WAV and MP3 are decoded (clipSource). */
export async function fileSource(bytes: Uint8Array): Promise<AudioSource> {
  if (ascii(bytes, 0, 4) === 'OggS') return oggOpusSource(bytes);
  let format: ClipFormat;
  try {
    format = sniffClipFormat(bytes);
  } catch {
    const other = KNOWN_OTHERS.find(([, test]) => test(bytes))?.[0];
    throw new AudioFormatError(`${other ? `${other} files are not supported` : 'unknown audio file'}: ${ACCEPTED}; convert others first, e.g. ffmpeg -i in.m4a out.wav`);
  }
  return clipSource(bytes, format);
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
