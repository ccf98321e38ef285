/**
 * Realtime input audio formats → Earshot decoders: audio/pcm (pcm16) little-endian at 24 kHz
 * (other rates the PCM decoder supports are accepted too), audio/pcmu and audio/pcma
 * (g711_ulaw / g711_alaw) at 8 kHz.
 */
import { EarshotError } from '../../protocol/errors.js';
import { PCM_RATES } from '../../protocol/native.js';
import type { AudioFormat } from '../../protocol/realtime.js';
import type { Decoder } from '../audio/decoder.js';
import { SAMPLE_RATE, type Pcm16k } from '../audio/format.js';
import { decodeG711Clip, G711_RATE, G711Decoder } from '../audio/g711.js';
import type { AudioInputSpec } from '../audio/select.js';
import type { OutputFormat } from '../voice/output.js';
import { Pcm16Decoder } from '../audio/pcm16.js';
import { resample } from '../audio/resample.js';

/** Input and output audio share the kinds. */
export type InputFormat = OutputFormat;

export const DEFAULT_FORMAT: InputFormat = { kind: 'pcm', rate: 24_000 };

function unsupported(message: string, param: string): EarshotError {
  return new EarshotError('unsupported', message, { param });
}

/** `param`: where the format sits (input or output). */
export function formatFromGa(format: AudioFormat, param = 'session.audio.input.format'): InputFormat {
  switch (format.type) {
    case 'audio/pcm': {
      const rate = format.rate ?? 24_000;
      if (!(PCM_RATES as readonly number[]).includes(rate))
        throw unsupported(`audio/pcm at ${rate} Hz is not supported (use 24000; ${PCM_RATES.join(', ')} also work)`, `${param}.rate`);
      return { kind: 'pcm', rate };
    }
    case 'audio/pcmu':
      return { kind: 'ulaw' };
    case 'audio/pcma':
      return { kind: 'alaw' };
    default:
      throw unsupported(`audio format '${format.type}' is not supported (use audio/pcm, audio/pcmu or audio/pcma)`, `${param}.type`);
  }
}

export function formatFromBeta(format: string, param = 'session.input_audio_format'): InputFormat {
  switch (format) {
    case 'pcm16':
      return DEFAULT_FORMAT;
    case 'g711_ulaw':
      return { kind: 'ulaw' };
    case 'g711_alaw':
      return { kind: 'alaw' };
    default:
      throw unsupported(`${param.slice(param.indexOf('.') + 1)} '${format}' is not supported (use pcm16, g711_ulaw or g711_alaw)`, param);
  }
}

export function gaFormat(format: InputFormat): { type: string; rate?: number } {
  return format.kind === 'pcm' ? { type: 'audio/pcm', rate: format.rate } : { type: format.kind === 'ulaw' ? 'audio/pcmu' : 'audio/pcma' };
}

export function betaFormat(format: InputFormat): string {
  return format.kind === 'pcm' ? 'pcm16' : format.kind === 'ulaw' ? 'g711_ulaw' : 'g711_alaw';
}

export function sameFormat(a: InputFormat, b: InputFormat): boolean {
  return a.kind === b.kind && (a.kind !== 'pcm' || a.rate === (b as { rate: number }).rate);
}

/** A streaming decoder for `input_audio_buffer.append`. */
export function formatDecoder(format: InputFormat): Decoder {
  return format.kind === 'pcm' ? new Pcm16Decoder(format.rate) : new G711Decoder(format.kind);
}

/** The same decoder's spec, for a stream decoded on the listening shard that owns the socket. */
export function formatSpec(format: InputFormat): AudioInputSpec {
  return format.kind === 'pcm' ? { codec: 'pcm16', sampleRate: format.rate, channels: 1 } : { codec: format.kind, sampleRate: G711_RATE, channels: 1 };
}

/** A whole clip (an `input_audio` content part) as 16 kHz samples. */
export function decodeClip(format: InputFormat, bytes: Uint8Array): Pcm16k {
  if (format.kind !== 'pcm') return decodeG711Clip(format.kind, bytes);
  if (bytes.length % 2 !== 0) throw new EarshotError('bad_audio', 'pcm16 audio must have an even number of bytes', { param: 'item.content.audio' });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const samples = new Float32Array(bytes.length / 2);
  for (let i = 0; i < samples.length; i++) samples[i] = view.getInt16(2 * i, true) / 32768;
  return resample(samples, format.rate, SAMPLE_RATE);
}

