/**
 * A single-producer single-consumer byte ring in a SharedArrayBuffer: the event-loop thread
 * writes audio packets and control records, one audio thread reads them in order. No
 * postMessage per frame and no allocation: a record is copied in, an index is published with
 * Atomics.store, and the reader is woken only if it said it was about to sleep.
 *
 * Record layout (4-byte aligned): i32 stream id, i32 kind (>= 0: audio payload of that many
 * bytes; < 0: a control record whose payload length follows as the next i32), payload.
 */
const HEADER_INTS = 4;
const WRITE = 0;
const READ = 1;
const SLEEPING = 2;
/** Marks the rest of the buffer unused: the next record starts at offset 0. */
const WRAP = -0x7fff_ffff;

export const RECORD_CONTROL_OPEN = -1;
export const RECORD_CONTROL_FLUSH = -2;
export const RECORD_CONTROL_CLOSE = -3;

const align = (n: number) => (n + 3) & ~3;

/** ES2024's Atomics.waitAsync (in Node since 16): waits without blocking the thread's event loop. */
const waitAsync = (Atomics as unknown as {
  waitAsync(array: Int32Array, index: number, value: number, timeoutMs: number): { async: boolean; value: Promise<string> | string };
}).waitAsync;

export interface RingBuffers {
  header: SharedArrayBuffer;
  data: SharedArrayBuffer;
}

export function createRing(bytes: number): RingBuffers {
  return { header: new SharedArrayBuffer(HEADER_INTS * 4), data: new SharedArrayBuffer(align(bytes)) };
}

export class RingWriter {
  private readonly header: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private readonly size: number;

  constructor(ring: RingBuffers) {
    this.header = new Int32Array(ring.header);
    this.bytes = new Uint8Array(ring.data);
    this.view = new DataView(ring.data);
    this.size = ring.data.byteLength;
  }

  /** Appends a record whose payload is `payload` from `start` on; false when the reader is too far behind (the ring is full). */
  write(stream: number, kind: number, payload: Uint8Array, start = 0): boolean {
    const control = kind < 0;
    const length = payload.length - start;
    const need = 8 + (control ? 4 : 0) + align(length);
    const read = Atomics.load(this.header, READ);
    let write = this.header[WRITE]!;
    // write === read means empty, so the writer never lands exactly on the reader.
    if (write >= read) {
      if (write + need < this.size || (write + need === this.size && read !== 0)) {
        // fits before the end
      } else {
        if (need >= read) return false;
        if (write + 8 <= this.size) this.view.setInt32(write + 4, WRAP, true);
        write = 0;
      }
    } else if (write + need >= read) return false;
    this.view.setInt32(write, stream, true);
    this.view.setInt32(write + 4, kind, true);
    let at = write + 8;
    if (control) {
      this.view.setInt32(at, length, true);
      at += 4;
    }
    // An element loop past a tag byte, not set(payload.subarray(...)): no view per frame.
    if (start === 0) this.bytes.set(payload, at);
    else for (let i = 0; i < length; i++) this.bytes[at + i] = payload[start + i]!;
    Atomics.store(this.header, WRITE, (write + need) % this.size);
    if (Atomics.load(this.header, SLEEPING) === 1) Atomics.notify(this.header, WRITE);
    return true;
  }
}

/** A record's payload is `bytes[start, end)`: the ring itself, so reading a frame makes no view. */
export interface RingRecord {
  stream: number;
  kind: number;
  bytes: Uint8Array;
  start: number;
  end: number;
}

export class RingReader {
  private readonly header: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private readonly size: number;
  private readonly record: RingRecord;
  private pending = 0;

  constructor(ring: RingBuffers) {
    this.header = new Int32Array(ring.header);
    this.bytes = new Uint8Array(ring.data);
    this.view = new DataView(ring.data);
    this.size = ring.data.byteLength;
    this.record = { stream: 0, kind: 0, bytes: this.bytes, start: 0, end: 0 };
  }

  /** The next record (a reused object; its payload is valid until `release`), or undefined. */
  next(): RingRecord | undefined {
    let read = this.header[READ]!;
    const write = Atomics.load(this.header, WRITE);
    if (read === write) return undefined;
    if (read + 8 > this.size || this.view.getInt32(read + 4, true) === WRAP) {
      // The writer wrapped: the rest of the buffer is unused.
      read = 0;
      Atomics.store(this.header, READ, 0);
      if (write === 0) return undefined;
    }
    const r = this.record;
    r.stream = this.view.getInt32(read, true);
    r.kind = this.view.getInt32(read + 4, true);
    let at = read + 8;
    let length = r.kind;
    if (r.kind < 0) {
      length = this.view.getInt32(at, true);
      at += 4;
    }
    r.start = at;
    r.end = at + length;
    this.pending = at - read + align(length);
    return r;
  }

  /** Frees the record returned by `next`. */
  release(): void {
    const read = this.header[READ]!;
    Atomics.store(this.header, READ, (read + this.pending) % this.size);
    this.pending = 0;
  }

  /** Resolves when a writer may have published more (or after `timeoutMs`). */
  async waitForData(timeoutMs: number): Promise<void> {
    Atomics.store(this.header, SLEEPING, 1);
    const seen = Atomics.load(this.header, WRITE);
    if (seen === this.header[READ]) {
      const waited = waitAsync(this.header, WRITE, seen, timeoutMs);
      if (waited.async) await waited.value;
    }
    Atomics.store(this.header, SLEEPING, 0);
  }
}
