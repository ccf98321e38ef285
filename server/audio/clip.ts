import { EarshotError } from '../../protocol/errors.js';
import { SAMPLE_RATE, type Pcm16k } from './format.js';
import { decodeMp3 } from './mp3.js';
import { resample } from './resample.js';
import { decodeWav, type DecodedAudio } from './wav.js';

export type ClipFormat = 'wav' | 'mp3';

function downmix(channels: Float32Array[]): Float32Array {
  const [first] = channels;
  if (!first) throw new EarshotError('bad_audio', 'clip has no channels');
  if (channels.length === 1) return first;
  const out = new Float32Array(first.length);
  for (const channel of channels) for (let i = 0; i < out.length; i++) out[i]! += channel[i]!;
  const scale = 1 / channels.length;
  for (let i = 0; i < out.length; i++) out[i]! *= scale;
  return out;
}

/** The container, by content, not by name, declared type or `format` label: clients label files loosely (LangChain sends MP3 as 'wav'). */
export function sniffClipFormat(bytes: Uint8Array): ClipFormat {
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, 12)).toString('latin1');
  if (head.startsWith('RIFF') && head.slice(8, 12) === 'WAVE') return 'wav';
  if (head.startsWith('ID3') || (bytes[0] === 0xff && (bytes[1]! & 0xe0) === 0xe0)) return 'mp3';
  throw new EarshotError('unsupported', 'audio must be WAV or MP3 (recognised by its bytes)');
}

/** Decodes an uploaded clip (REST `input_audio`, a transcription's file) to the server's one audio format; the bytes say which container. */
export async function decodeClip(bytes: Uint8Array, format: ClipFormat = sniffClipFormat(bytes)): Promise<Pcm16k> {
  const decoded: DecodedAudio = format === 'wav' ? decodeWav(bytes) : await decodeMp3(bytes);
  return resample(downmix(decoded.channels), decoded.sampleRate, SAMPLE_RATE);
}

/** Clips one after another with `gapSamples` of silence between them; a single clip passes through uncopied. */
export function joinClips(clips: Pcm16k[], gapSamples = 0): Pcm16k {
  if (clips.length === 1) return clips[0]!;
  const out = new Float32Array(clips.reduce((n, c) => n + c.length, 0) + gapSamples * Math.max(0, clips.length - 1));
  let at = 0;
  for (const clip of clips) {
    out.set(clip, at);
    at += clip.length + gapSamples;
  }
  return out;
}
