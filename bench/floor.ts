/**
 * The floor: the bare cost of what a real-time Opus session cannot avoid, decoding each 20 ms
 * packet (OpusPacketDecoder.decode) and classifying it (WebRtcVad.isSpeech), with nothing else
 * around them. Measured as CPU time of this process (process.cpuUsage), which other work on the
 * machine does not inflate the way it inflates wall time, in the same run as the capacity sweep
 * and over as many decoder and VAD states as the sweep step has sessions, round-robin like the
 * server meets them, so the states are as cold in cache as the server's.
 */
import { OpusPacketDecoder } from '../server/audio/opus.js';
import { loadFvad, WebRtcVad } from '../server/vad/fvad.js';

export interface FloorResult {
  streams: number;
  /** CPU µs per frame over the sweep's own mix of packets (one packet set per stream, in the sweep's order). */
  usPerFrame: number;
  /** The same with every stream on the fixtures' packets (opusenc, 16 kHz), and on web-page-like packets (48 kHz, 32 kbit/s). */
  fixtureUsPerFrame: number;
  webUsPerFrame: number;
  /** 20 ms of audio per frame: how many real-time streams one core could carry at the floor (mix). */
  streamsPerCore: number;
}

const WARM_UP_FRAMES = 2000;

const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** CPU µs per frame of decode + VAD over `streams` states, stream i on packetSets[i % length] from a random point. */
async function floorOf(packetSets: Uint8Array[][], streams: number, cpuMs: number): Promise<number> {
  const fvad = await loadFvad();
  const decoders = await Promise.all(Array.from({ length: streams }, () => OpusPacketDecoder.create(16_000, 1)));
  const vads = Array.from({ length: streams }, () => new WebRtcVad(fvad, 3));
  const packets = Array.from({ length: streams }, (_, i) => packetSets[i % packetSets.length]!);
  const at = packets.map((p) => Math.floor(Math.random() * p.length));
  const round = () => {
    for (let s = 0; s < streams; s++) {
      const set = packets[s]!;
      vads[s]!.isSpeech(decoders[s]!.decode(set[at[s]!]!));
      at[s] = (at[s]! + 1) % set.length;
    }
  };
  try {
    // Warm-up: at least WARM_UP_FRAMES, so the JIT has settled before the clock starts.
    for (let frames = 0; frames < WARM_UP_FRAMES; frames += streams) round();
    let frames = 0;
    const start = cpuUs();
    while (cpuUs() - start < cpuMs * 1000) {
      round();
      frames += streams;
    }
    return (cpuUs() - start) / frames;
  } finally {
    for (const d of decoders) d.close();
    for (const v of vads) v.close();
  }
}

/** `mix`: the sweep's voices' packets in the sweep's order; `fixtures` and `web`: each kind alone. */
export async function measureFloor(packets: { mix: Uint8Array[][]; fixtures: Uint8Array[][]; web: Uint8Array[][] }, streams: number, cpuMs: number): Promise<FloorResult> {
  const usPerFrame = await floorOf(packets.mix, streams, cpuMs);
  const fixtureUsPerFrame = await floorOf(packets.fixtures, streams, cpuMs / 2);
  const webUsPerFrame = await floorOf(packets.web, streams, cpuMs / 2);
  return { streams, usPerFrame, fixtureUsPerFrame, webUsPerFrame, streamsPerCore: 20_000 / usPerFrame };
}
