import { Decoder, Encoder } from '@msgpack/msgpack';
import { EarshotError } from './errors.js';
import { ClientMessage, RAW_AUDIO_TAG, ServerMessage } from './native.js';

const encoder = new Encoder({ ignoreUndefined: true });
const decoder = new Decoder({ maxStrLength: 1 << 20, maxBinLength: 16 << 20, maxArrayLength: 1024, maxMapLength: 64 });

export function encodeServerMessage(message: ServerMessage): Uint8Array {
  return encoder.encode(message);
}

export function encodeClientMessage(message: ClientMessage): Uint8Array {
  return encoder.encode(message);
}

/** A server message, validated: clients call this at their edge. */
export function decodeServerMessage(bytes: Uint8Array): ServerMessage {
  const parsed = ServerMessage.safeParse(decoder.decode(bytes));
  if (!parsed.success) throw new EarshotError('bad_message', `malformed server message: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

/** A raw audio frame: tag byte then payload. `out` lets a sender reuse one buffer per frame. */
export function encodeRawAudio(payload: Uint8Array, out = new Uint8Array(payload.length + 1)): Uint8Array {
  out[0] = RAW_AUDIO_TAG;
  out.set(payload, 1);
  return out.subarray(0, payload.length + 1);
}

/** True for a raw audio frame (tag byte, then the codec payload from byte 1): the hot path checks this before any decoding. */
export function isRawAudio(bytes: Uint8Array): boolean {
  return bytes[0] === RAW_AUDIO_TAG;
}

/** Parses and validates one msgpack message from a client; throws EarshotError('bad_message') otherwise. */
export function decodeClientMessage(bytes: Uint8Array): ClientMessage {
  if (bytes.length === 0) throw new EarshotError('bad_message', 'empty frame');
  let value: unknown;
  try {
    value = decoder.decode(bytes);
  } catch (err) {
    throw new EarshotError('bad_message', `frame is not valid msgpack: ${(err as Error).message}`);
  }
  const parsed = ClientMessage.safeParse(value);
  if (!parsed.success) {
    const type = typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined;
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
    const what = typeof type === 'string' ? `invalid '${type}' message` : 'invalid message';
    // A hello the server cannot read starts no session, as one it cannot serve starts none: both end the connection.
    throw new EarshotError('bad_message', `${what}${where}: ${issue?.message ?? 'schema violation'}`, { fatal: type === 'hello' });
  }
  return parsed.data;
}
