import { OpusPacketDecoder } from '../audio/opus.js';
import { Pcm16Decoder } from '../audio/pcm16.js';
import type { Decoder } from '../audio/decoder.js';
import { loadFvad, WebRtcVad } from '../vad/fvad.js';
import { VadSegmenter, type SegmenterSettings } from '../vad/segmenter.js';

export interface AudioInputSpec {
  codec: 'opus' | 'pcm16';
  sampleRate: number;
  channels: 1 | 2;
}

export async function createDecoder(spec: AudioInputSpec): Promise<Decoder> {
  return spec.codec === 'opus' ? OpusPacketDecoder.create(spec.sampleRate, spec.channels) : new Pcm16Decoder(spec.sampleRate, spec.channels);
}

export async function createSegmenter(aggressiveness: number, settings: SegmenterSettings): Promise<VadSegmenter> {
  return new VadSegmenter(new WebRtcVad(await loadFvad(), aggressiveness), settings);
}
