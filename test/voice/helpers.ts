/** Shared by the voice tests: collecting a stream of PCM chunks. */
import type { Pcm24k } from '../../server/voice/types.js';

export function joinPcm(chunks: Pcm24k[]): Int16Array {
  const out = new Int16Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

export async function collect(audio: AsyncIterable<Pcm24k>): Promise<Int16Array> {
  const chunks: Pcm24k[] = [];
  for await (const chunk of audio) chunks.push(chunk);
  return joinPcm(chunks);
}
