/** The decoder for the audio a client declared (native `hello`, a Realtime input format, the audio threads' and shards' streams). */
import type { Decoder } from './decoder.js';
import { G711Decoder } from './g711.js';
import { OpusPacketDecoder } from './opus.js';
import { Pcm16Decoder } from './pcm16.js';

export interface AudioInputSpec {
  /** `ulaw` and `alaw`: G.711 at 8 kHz mono (Realtime's audio/pcmu and audio/pcma). */
  codec: 'opus' | 'pcm16' | 'ulaw' | 'alaw';
  sampleRate: number;
  channels: 1 | 2;
}

export async function createDecoder(spec: AudioInputSpec): Promise<Decoder> {
  if (spec.codec === 'opus') return OpusPacketDecoder.create(spec.sampleRate, spec.channels);
  return spec.codec === 'pcm16' ? new Pcm16Decoder(spec.sampleRate, spec.channels) : new G711Decoder(spec.codec);
}
