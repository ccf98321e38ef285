/** The decoder for the audio a client declared (native `hello`, the audio threads' streams). */
import type { Decoder } from './decoder.js';
import { OpusPacketDecoder } from './opus.js';
import { Pcm16Decoder } from './pcm16.js';

export interface AudioInputSpec {
  codec: 'opus' | 'pcm16';
  sampleRate: number;
  channels: 1 | 2;
}

export async function createDecoder(spec: AudioInputSpec): Promise<Decoder> {
  return spec.codec === 'opus' ? OpusPacketDecoder.create(spec.sampleRate, spec.channels) : new Pcm16Decoder(spec.sampleRate, spec.channels);
}
