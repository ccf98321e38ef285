/**
 * Frames between the pool and worker.py: a 4-byte big-endian length, then one msgpack map.
 * The decoder is incremental: pipe chunks split and merge frames arbitrarily.
 */
import { Decoder, Encoder } from '@msgpack/msgpack';

/** A run frame carries the whole history, audio included (30 s of float32 is 1.9 MB). */
export const MAX_FRAME_BYTES = 256 << 20;
const HEADER_BYTES = 4;

const encoder = new Encoder({ ignoreUndefined: true });
const decoder = new Decoder();

export function encodeFrame(message: unknown): Buffer {
  const body = encoder.encode(message);
  const frame = Buffer.allocUnsafe(HEADER_BYTES + body.byteLength);
  frame.writeUInt32BE(body.byteLength, 0);
  frame.set(body, HEADER_BYTES);
  return frame;
}

export class FrameDecoder {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  /** Payload length of the frame being read, or -1 while its header is incomplete. */
  private need = -1;

  constructor(private readonly maxFrameBytes = MAX_FRAME_BYTES) {}

  /** Returns every message completed by this chunk; throws on an oversized frame or bad msgpack. */
  push(chunk: Buffer): unknown[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const messages: unknown[] = [];
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < HEADER_BYTES) break;
        this.need = this.take(HEADER_BYTES).readUInt32BE(0);
        if (this.need > this.maxFrameBytes) throw new Error(`frame of ${this.need} bytes exceeds ${this.maxFrameBytes}`);
      }
      if (this.buffered < this.need) break;
      const body = this.take(this.need);
      this.need = -1;
      messages.push(decoder.decode(body));
    }
    return messages;
  }

  /** The next n buffered bytes: a view when one chunk holds them, else one copy. */
  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0]!;
      const used = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, used);
      filled += used;
      if (used === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(used);
    }
    return out;
  }
}
