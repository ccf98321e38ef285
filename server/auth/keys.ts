/**
 * API keys: where a request or an upgrade carries one, and the constant-time check against the
 * configured keys. REST, both websocket doors and the rate limiter read keys through here.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { UpgradeRequest } from '../transport/types.js';

/** Browsers cannot set headers on a websocket: the OpenAI Realtime SDK offers the key as this subprotocol. */
const KEY_PROTOCOL = 'openai-insecure-api-key.';

/** The key of an `Authorization: Bearer <key>` header, if there is one. */
export function bearerKey(headers: Record<string, string>): string | undefined {
  const header = headers['authorization'];
  return header?.toLowerCase().startsWith('bearer ') ? header.slice(7).trim() : undefined;
}

/** The key on an upgrade: `Authorization: Bearer`, `?token=`, or the subprotocol `openai-insecure-api-key.<key>`. */
export function bearerToken(request: UpgradeRequest): string | undefined {
  return bearerKey(request.headers) ?? request.query.get('token') ?? request.protocols.find((p) => p.startsWith(KEY_PROTOCOL))?.slice(KEY_PROTOCOL.length);
}

/** Checks a presented key against `keys` in constant time (digests hide the length); with no keys, auth is off. */
export function keyChecker(keys: string[]): (key: string | undefined) => boolean {
  if (keys.length === 0) return () => true;
  const digests = keys.map((k) => createHash('sha256').update(k).digest());
  return (key) => {
    if (key === undefined) return false;
    const digest = createHash('sha256').update(key).digest();
    let ok = false;
    for (const d of digests) ok = timingSafeEqual(d, digest) || ok;
    return ok;
  };
}
