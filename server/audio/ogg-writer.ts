/**
 * Ogg Opus muxer (RFC 3533 pages, RFC 7845 Opus mapping) for REST speech as `.opus` files: an
 * OpusHead page, an OpusTags page, then audio pages, each flushed as soon as a call adds
 * packets, so a streamed response carries audio as it is made. Granule positions count 48 kHz
 * samples; the last page's granule trims the padding of the final frame.
 */
import { oggPageCrc } from '../../protocol/ogg.js';

const OPUS_RATE = 48_000;
/** libopus' encoder delay at every rate (2.5 ms + 4 ms), in 48 kHz samples. */
const PRE_SKIP = 312;
const FLAG_BOS = 0x02;
const FLAG_EOS = 0x04;
const MAX_SEGMENTS = 255;
const VENDOR = 'earshot';

export class OggOpusWriter {
  private readonly serial = (Math.random() * 0x1_0000_0000) >>> 0;
  private readonly samplesPer48k: number;
  private readonly inputRate: number;
  private sequence = 0;
  private granule = 0;

  /** `frameSamples` at `inputRate`: every packet's duration (the encoder's fixed frame). */
  constructor(inputRate: number, frameSamples: number) {
    this.inputRate = inputRate;
    this.samplesPer48k = (frameSamples * OPUS_RATE) / inputRate;
  }

  /** The two header pages that start the stream. */
  header(): Uint8Array {
    const head = new Uint8Array(19);
    const view = new DataView(head.buffer);
    head.set(ascii('OpusHead'));
    head[8] = 1; // version
    head[9] = 1; // mono
    view.setUint16(10, PRE_SKIP, true);
    view.setUint32(12, this.inputRate, true);
    const vendor = ascii(VENDOR);
    const tags = new Uint8Array(8 + 4 + vendor.length + 4);
    tags.set(ascii('OpusTags'));
    new DataView(tags.buffer).setUint32(8, vendor.length, true);
    tags.set(vendor, 12);
    return Buffer.concat([this.page([head], FLAG_BOS, 0), this.page([tags], 0, 0)]);
  }

  /** Audio pages holding `packets` (none when there are none). */
  pages(packets: Uint8Array[]): Uint8Array {
    const pages: Uint8Array[] = [];
    for (const group of byLacing(packets)) {
      this.granule += group.length * this.samplesPer48k;
      pages.push(this.page(group, 0, this.granule));
    }
    return Buffer.concat(pages);
  }

  /**
   * The last page, with `packets` (maybe none) and the end-of-stream flag. `samples`: how much
   * real audio (at the input rate) the stream held, so players drop the final frame's padding.
   */
  end(packets: Uint8Array[], samples: number): Uint8Array {
    const groups = byLacing(packets);
    if (groups.length === 0) groups.push([]);
    const pages: Uint8Array[] = [];
    groups.forEach((group, i) => {
      this.granule += group.length * this.samplesPer48k;
      const last = i === groups.length - 1;
      const granule = last ? Math.min(this.granule, PRE_SKIP + Math.round((samples * OPUS_RATE) / this.inputRate)) : this.granule;
      pages.push(this.page(group, last ? FLAG_EOS : 0, granule));
    });
    return Buffer.concat(pages);
  }

  private page(packets: Uint8Array[], flags: number, granule: number): Uint8Array {
    const lacing: number[] = [];
    for (const p of packets) {
      for (let left = p.length; ; left -= 255) {
        lacing.push(Math.min(left, 255));
        if (left < 255) break;
      }
    }
    const bodyBytes = packets.reduce((n, p) => n + p.length, 0);
    const page = new Uint8Array(27 + lacing.length + bodyBytes);
    const view = new DataView(page.buffer);
    page.set(ascii('OggS'));
    page[5] = flags;
    view.setBigUint64(6, BigInt(granule), true);
    view.setUint32(14, this.serial, true);
    view.setUint32(18, this.sequence++, true);
    page[26] = lacing.length;
    page.set(lacing, 27);
    let at = 27 + lacing.length;
    for (const p of packets) {
      page.set(p, at);
      at += p.length;
    }
    view.setUint32(22, oggPageCrc(page), true);
    return page;
  }
}

/** Splits packets into groups whose lacing values fit one page. */
function byLacing(packets: Uint8Array[]): Uint8Array[][] {
  const groups: Uint8Array[][] = [];
  let group: Uint8Array[] = [];
  let segments = 0;
  for (const p of packets) {
    const needed = Math.floor(p.length / 255) + 1;
    if (segments + needed > MAX_SEGMENTS && group.length > 0) {
      groups.push(group);
      group = [];
      segments = 0;
    }
    group.push(p);
    segments += needed;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

function ascii(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}
