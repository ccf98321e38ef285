/**
 * A TCP proxy in front of a real server that delivers the server's websocket frames in one
 * burst: frames pass through until the first `turn` message, then everything is held until
 * `doneCount` turns have ended, and written to the client in a single write. This is
 * what a busy client machine sees when it falls behind (all pending frames in one read), made
 * deterministic.
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { decodeServerMessage } from '../../protocol/codec.js';

const OPCODE_BINARY = 2;
/** Messages that end a turn: held frames are released once `doneCount` of them arrived, however the turns ended. */
const ENDS_A_TURN = new Set(['done', 'error', 'busy']);

function messageType(payload: Uint8Array): string | undefined {
  try {
    return decodeServerMessage(payload).type;
  } catch {
    return undefined;
  }
}

/** Splits the server's byte stream into the HTTP response head and then whole websocket frames. */
class FrameSplitter {
  private pending = Buffer.alloc(0);
  private inHead = true;

  /** Returns complete units (the head, then one frame each) with the decoded message type of binary frames. */
  push(chunk: Buffer): { bytes: Buffer; type?: string }[] {
    this.pending = Buffer.concat([this.pending, chunk]);
    const units: { bytes: Buffer; type?: string }[] = [];
    for (;;) {
      if (this.inHead) {
        const end = this.pending.indexOf('\r\n\r\n');
        if (end < 0) return units;
        units.push({ bytes: this.pending.subarray(0, end + 4) });
        this.pending = this.pending.subarray(end + 4);
        this.inHead = false;
        continue;
      }
      if (this.pending.length < 2) return units;
      let length = this.pending[1]! & 0x7f;
      let at = 2;
      if (length === 126) {
        if (this.pending.length < 4) return units;
        length = this.pending.readUInt16BE(2);
        at = 4;
      } else if (length === 127) {
        if (this.pending.length < 10) return units;
        length = Number(this.pending.readBigUInt64BE(2));
        at = 10;
      }
      if (this.pending.length < at + length) return units;
      const bytes = this.pending.subarray(0, at + length);
      const type = (bytes[0]! & 0x0f) === OPCODE_BINARY ? messageType(bytes.subarray(at)) : undefined;
      units.push(type === undefined ? { bytes } : { bytes, type });
      this.pending = this.pending.subarray(at + length);
    }
  }
}

export async function burstProxy(target: { host: string; port: number }, doneCount: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    client.pipe(upstream);
    const splitter = new FrameSplitter();
    let state: 'passing' | 'holding' | 'released' = 'passing';
    let held: Buffer[] = [];
    let done = 0;
    upstream.on('data', (chunk: Buffer) => {
      for (const unit of splitter.push(chunk)) {
        if (state === 'holding') held.push(unit.bytes);
        else client.write(unit.bytes);
        if (unit.type === 'turn' && state === 'passing') state = 'holding';
        if (unit.type !== undefined && ENDS_A_TURN.has(unit.type) && ++done === doneCount) {
          client.write(Buffer.concat(held));
          held = [];
          state = 'released';
        }
      }
    });
    upstream.on('end', () => {
      if (held.length > 0) client.write(Buffer.concat(held));
      client.end();
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
