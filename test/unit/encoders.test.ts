import t from 'tap';
import { alawToLinear, G711Decoder, G711Encoder, linearToAlaw, linearToUlaw, ulawToLinear } from '../../server/audio/g711.js';
import { OpusPacketDecoder } from '../../server/audio/opus.js';
import { OpusEncoder } from '../../server/audio/opus-encoder.js';
import { floatToPcm16, Pcm16Decoder } from '../../server/audio/pcm16.js';
import { resample } from '../../server/audio/resample.js';
import { correlation } from '../helpers/signal.js';

/** A 24 kHz PCM16 test signal: two tones in the speech band. */
function voiceBand(seconds: number): Int16Array {
  const out = new Float32Array(Math.round(24_000 * seconds));
  for (let i = 0; i < out.length; i++) out[i] = 0.3 * Math.sin((2 * Math.PI * 300 * i) / 24_000) + 0.2 * Math.sin((2 * Math.PI * 1100 * i) / 24_000);
  return floatToPcm16(out);
}

const at16k = (pcm: Int16Array) => resample(Float32Array.from(pcm, (s) => s / 32768), 24_000, 16_000);

t.test('G.711: every code survives encode(decode(code)); a stream encodes to 8 kHz that decodes alike', async (t) => {
  for (const [law, encode, decode] of [['ulaw', linearToUlaw, ulawToLinear], ['alaw', linearToAlaw, alawToLinear]] as const) {
    const wrong = Array.from({ length: 256 }, (_, b) => b).filter((b) => encode(decode(b)) !== b && decode(b) !== 0);
    t.same(wrong, [], `${law}: codes round-trip`);
    const input = voiceBand(0.5);
    const encoder = new G711Encoder(law);
    const bytes = Buffer.concat([encoder.encode(input.subarray(0, 5000)), encoder.encode(input.subarray(5000)), encoder.flush()]);
    t.equal(bytes.length, 4000, `${law}: 0.5 s at 8 kHz`);
    const decoded = new G711Decoder(law).decode(bytes);
    t.ok(correlation(decoded.subarray(200, 7000), at16k(input).subarray(200, 7000)) > 0.98, `${law}: the decoded signal matches the input`);
  }
});

t.test('Opus: 20 ms packets at 24 and 48 kHz that libopus decodes back to the input', async (t) => {
  for (const rate of [24_000, 48_000] as const) {
    const input = voiceBand(0.49);
    const encoder = new OpusEncoder(rate);
    const packets = [...encoder.encode(input.subarray(0, 1000)), ...encoder.encode(input.subarray(1000)), ...encoder.flush()];
    encoder.close();
    t.equal(packets.length, 25, `${rate}: 490 ms in 25 packets, the last padded`);
    const decoder = await OpusPacketDecoder.create(rate, 1);
    const decoded = new Float32Array(packets.length * 320);
    packets.forEach((p, i) => decoded.set(decoder.decode(p), i * 320));
    decoder.close();
    // libopus delays its output by 6.5 ms (104 samples at 16 kHz).
    t.ok(correlation(decoded.subarray(104 + 800, 7000), at16k(input).subarray(800, 7000 - 104)) > 0.9, `${rate}: the decoded signal matches the input`);
  }
});

t.test('every decoder reads a packet in place (past a tag byte, inside a larger buffer) exactly as the packet alone', async (t) => {
  const input = voiceBand(0.2);
  const opus = new OpusEncoder(48_000);
  const opusPackets = [...opus.encode(input), ...opus.flush()];
  opus.close();
  const g711 = new G711Encoder('ulaw');
  const g711Bytes = Buffer.concat([g711.encode(input), g711.flush()]);
  const pcmBytes = new Uint8Array(floatToPcm16(at16k(input)).buffer);
  // Odd PCM packet sizes, so a byte is carried across packets.
  const cut = (bytes: Uint8Array, size: number) => Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) => bytes.subarray(i * size, (i + 1) * size));
  const cases = [
    { name: 'opus', make: () => OpusPacketDecoder.create(48_000, 1), packets: opusPackets },
    { name: 'pcm16', make: async () => new Pcm16Decoder(16_000), packets: cut(pcmBytes, 641) },
    { name: 'g711', make: async () => new G711Decoder('ulaw'), packets: cut(g711Bytes, 160) },
  ];
  for (const { name, make, packets } of cases) {
    const alone = await make();
    const inPlace = await make();
    let same = true;
    for (const packet of packets) {
      const framed = new Uint8Array(packet.length + 3);
      framed[0] = 0x01;
      framed.set(packet, 1);
      const a = alone.decode(packet).slice();
      const b = inPlace.decode(framed, 1, 1 + packet.length);
      same &&= a.length === b.length && a.every((x, i) => x === b[i]);
    }
    t.ok(same, `${name}: ${packets.length} packets decode alike`);
    alone.close();
    inPlace.close();
  }
});
