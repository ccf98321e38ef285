/**
 * Ogg Opus demuxer (RFC 3533 pages, RFC 7845 Opus mapping): turns an `.opus` file into the raw
 * Opus packets the native protocol streams. It follows the first logical stream, which must be
 * Opus; pages of other streams (multiplexed or chained) are ignored. Every page's CRC is checked,
 * so corrupt or non-Ogg input fails loudly instead of yielding garbage packets.
 */
import { oggPageCrc } from '../../protocol/ogg.js';

export interface OpusHead {
  channels: number;
  /** Samples at 48 kHz to drop from the start of the decoded output. */
  preSkip: number;
  /** Rate of the audio before encoding (informational; Opus always decodes at 8-48 kHz). */
  inputSampleRate: number;
}

export interface OggOpus extends OpusHead {
  packets: Uint8Array[];
}

const CAPTURE = [0x4f, 0x67, 0x67, 0x53]; // "OggS"
const HEADER_BYTES = 27;
const FLAG_CONTINUED = 0x01;
const FLAG_BOS = 0x02;
const OPUS_HEAD = 'OpusHead';
const OPUS_TAGS = 'OpusTags';

function startsWith(bytes: Uint8Array, magic: string): boolean {
  if (bytes.length < magic.length) return false;
  for (let i = 0; i < magic.length; i++) if (bytes[i] !== magic.charCodeAt(i)) return false;
  return true;
}

function parseOpusHead(packet: Uint8Array): OpusHead {
  if (!startsWith(packet, OPUS_HEAD)) throw new Error('not an Opus stream: the first Ogg packet is not OpusHead');
  if (packet.length < 19) throw new Error(`invalid OpusHead: ${packet.length} bytes, need at least 19`);
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  const version = packet[8]!;
  // RFC 7845 §5.1: the high nibble is the major version; only 0 is defined.
  if (version >> 4 !== 0) throw new Error(`unsupported OpusHead version ${version}`);
  const channels = packet[9]!;
  if (channels === 0) throw new Error('invalid OpusHead: 0 channels');
  return { channels, preSkip: view.getUint16(10, true), inputSampleRate: view.getUint32(12, true) };
}

/**
 * Incremental demuxer: feed bytes as they arrive (any chunking), get back the audio packets
 * completed so far. `head` is set once the OpusHead packet has been read.
 */
export class OggOpusDemuxer {
  head: OpusHead | undefined;
  private pending: Uint8Array = new Uint8Array(0);
  /** Absolute stream offset of `pending[0]`, for error messages. */
  private offset = 0;
  private serial: number | undefined;
  private headerPackets = 0;
  /** Pieces of a packet that continues on the next page. */
  private partial: Uint8Array[] = [];

  /** Returns the audio packets (copies) completed by this chunk. */
  push(chunk: Uint8Array): Uint8Array[] {
    const buf = this.pending.length === 0 ? chunk : concat([this.pending, chunk]);
    const packets: Uint8Array[] = [];
    let pos = 0;
    for (;;) {
      const size = this.pageSize(buf, pos);
      if (size === undefined) break;
      this.readPage(buf.subarray(pos, pos + size), this.offset + pos, packets);
      pos += size;
    }
    this.pending = buf.slice(pos);
    this.offset += pos;
    return packets;
  }

  /** Checks the stream ended cleanly; throws if it was empty, not Opus, or cut mid-page or mid-packet. */
  end(): void {
    if (this.pending.length > 0) {
      throw new Error(`truncated Ogg stream: ${this.pending.length} bytes of an incomplete page at byte ${this.offset}`);
    }
    if (this.head === undefined) throw new Error('not an Opus stream: no Ogg pages found');
    if (this.partial.length > 0) throw new Error('truncated Ogg stream: the last packet continues past the last page');
  }

  /** Size of the complete page at `pos`, or undefined if more bytes are needed. */
  private pageSize(buf: Uint8Array, pos: number): number | undefined {
    const available = buf.length - pos;
    for (let i = 0; i < Math.min(4, available); i++) {
      if (buf[pos + i] !== CAPTURE[i]) throw new Error(`not an Ogg stream: missing "OggS" capture pattern at byte ${this.offset + pos}`);
    }
    if (available < HEADER_BYTES) return undefined;
    if (buf[pos + 4] !== 0) throw new Error(`unsupported Ogg version ${buf[pos + 4]} at byte ${this.offset + pos}`);
    const segments = buf[pos + 26]!;
    if (available < HEADER_BYTES + segments) return undefined;
    let body = 0;
    for (let i = 0; i < segments; i++) body += buf[pos + HEADER_BYTES + i]!;
    const size = HEADER_BYTES + segments + body;
    return available < size ? undefined : size;
  }

  private readPage(page: Uint8Array, at: number, out: Uint8Array[]): void {
    const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
    if (view.getUint32(22, true) !== oggPageCrc(page)) throw new Error(`corrupt Ogg page at byte ${at}: CRC mismatch`);
    const flags = page[5]!;
    const serial = view.getUint32(14, true);
    if (this.serial === undefined) {
      if (!(flags & FLAG_BOS)) throw new Error(`not an Ogg stream start: first page at byte ${at} lacks the beginning-of-stream flag`);
      this.serial = serial;
    } else if (serial !== this.serial) {
      return;
    }
    const segments = page[26]!;
    let dataPos = HEADER_BYTES + segments;
    // A continued page whose start we never saw (or a lost continuation) leaves no whole packet.
    if (!(flags & FLAG_CONTINUED)) this.partial = [];
    let dropping = (flags & FLAG_CONTINUED) !== 0 && this.partial.length === 0;
    let start = dataPos;
    for (let i = 0; i < segments; i++) {
      const lace = page[HEADER_BYTES + i]!;
      dataPos += lace;
      if (lace === 255) continue;
      if (!dropping) this.packet(page.subarray(start, dataPos), out);
      dropping = false;
      start = dataPos;
    }
    if (start < dataPos && !dropping) this.partial.push(page.slice(start, dataPos));
  }

  private packet(tail: Uint8Array, out: Uint8Array[]): void {
    const packet = this.partial.length === 0 ? tail.slice() : concat([...this.partial, tail]);
    this.partial = [];
    if (this.headerPackets === 0) {
      this.head = parseOpusHead(packet);
      this.headerPackets = 1;
    } else if (this.headerPackets === 1) {
      if (!startsWith(packet, OPUS_TAGS)) throw new Error('not an Opus stream: the second Ogg packet is not OpusTags');
      this.headerPackets = 2;
    } else {
      out.push(packet);
    }
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** Demuxes a whole `.opus` file; throws an Error naming the problem for non-Ogg or non-Opus input. */
export function parseOggOpus(bytes: Uint8Array): OggOpus {
  const demuxer = new OggOpusDemuxer();
  const packets = demuxer.push(bytes);
  demuxer.end();
  return { packets, ...demuxer.head! };
}
