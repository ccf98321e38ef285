/**
 * Packets like the web page's: clients/web/capture.js encodes the microphone with WebCodecs'
 * AudioEncoder at 48 kHz mono, 32 kbit/s, 20 ms frames (WebCodecs' default Opus application,
 * 'audio'). Here libopus (opusscript) encodes a fixture the same way, so the bench decodes the
 * kind of packet a browser sends as well as the fixtures' (opusenc at 16 kHz), which cost less.
 */
import OpusScript from 'opusscript';
import { floatToPcm16 } from '../server/audio/pcm16.js';
import { resample } from '../server/audio/resample.js';

export const WEB_RATE = 48_000;
const WEB_BITRATE = 32_000;
const FRAME_SAMPLES = (WEB_RATE * 20) / 1000;

export function webLikePackets(samples16k: Float32Array): Uint8Array[] {
  const pcm = floatToPcm16(resample(samples16k, 16_000, WEB_RATE));
  const encoder = new OpusScript(WEB_RATE, 1, OpusScript.Application.AUDIO);
  try {
    encoder.setBitrate(WEB_BITRATE);
    const packets: Uint8Array[] = [];
    for (let at = 0; at + FRAME_SAMPLES <= pcm.length; at += FRAME_SAMPLES) {
      const frame = Buffer.from(pcm.buffer, pcm.byteOffset + at * 2, FRAME_SAMPLES * 2);
      packets.push(Uint8Array.from(encoder.encode(frame, FRAME_SAMPLES)));
    }
    return packets;
  } finally {
    encoder.delete();
  }
}
