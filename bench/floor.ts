/**
 * The floor: the bare cost of what a real-time Opus session cannot avoid, decoding each
 * 20 ms packet (OpusPacketDecoder.decode) and classifying it (WebRtcVad.isSpeech), with
 * nothing else around them. Measured in the same run as the capacity ramp.
 */
import { OpusPacketDecoder } from '../server/audio/opus.js';
import { loadFvad, WebRtcVad } from '../server/vad/fvad.js';

export interface FloorResult {
  usPerFrame: number;
  decodeUsPerFrame: number;
  vadUsPerFrame: number;
  /** 20 ms of audio per frame: how many real-time streams one core could carry at the floor. */
  streamsPerCore: number;
}

async function timePerFrame(packets: Uint8Array[], minMs: number, step: (packet: Uint8Array) => void): Promise<number> {
  for (let i = 0; i < Math.min(packets.length, 200); i++) step(packets[i]!); // warm-up
  let frames = 0;
  const start = performance.now();
  while (performance.now() - start < minMs) {
    for (const packet of packets) step(packet);
    frames += packets.length;
  }
  return ((performance.now() - start) * 1000) / frames;
}

export async function measureFloor(packets: Uint8Array[], minMs: number): Promise<FloorResult> {
  const vad = new WebRtcVad(await loadFvad(), 3);
  const decoder = await OpusPacketDecoder.create(16000, 1);
  const pcm = decoder.decode(packets[Math.floor(packets.length / 2)]!).slice();
  // Best of three: other work on a shared machine only ever adds time.
  let both = Infinity;
  let decodeOnly = Infinity;
  let vadOnly = Infinity;
  for (let round = 0; round < 3; round++) {
    both = Math.min(both, await timePerFrame(packets, minMs / 3, (p) => vad.isSpeech(decoder.decode(p))));
    decodeOnly = Math.min(decodeOnly, await timePerFrame(packets, minMs / 6, (p) => decoder.decode(p)));
    vadOnly = Math.min(vadOnly, await timePerFrame(packets, minMs / 6, () => vad.isSpeech(pcm)));
  }
  decoder.close();
  vad.close();
  return { usPerFrame: both, decodeUsPerFrame: decodeOnly, vadUsPerFrame: vadOnly, streamsPerCore: 20_000 / both };
}
