import type { EarshotError } from '../../protocol/errors.js';
import { bearerKey } from '../http/bearer.js';
import type { UpgradeDecision, UpgradeRequest } from '../transport/types.js';

/** A key from `Authorization: Bearer …` or the `?token=` query (browsers cannot set headers). */
/** Browsers cannot set headers on a websocket: the OpenAI Realtime SDK offers the key as this subprotocol. */
const KEY_PROTOCOL = 'openai-insecure-api-key.';

/** The key on an upgrade: `Authorization: Bearer`, `?token=`, or the subprotocol `openai-insecure-api-key.<key>`. */
export function bearerToken(request: UpgradeRequest): string | undefined {
  return bearerKey(request.headers) ?? request.query.get('token') ?? request.protocols.find((p) => p.startsWith(KEY_PROTOCOL))?.slice(KEY_PROTOCOL.length);
}

/** An HTTP answer to a refused upgrade, with `retry-after` when the error carries a hint. */
export function rejectUpgrade(error: EarshotError): UpgradeDecision {
  const body = JSON.stringify({ error: { code: error.code, message: error.message } });
  if (error.retryAfterMs === undefined) return { accept: false, status: error.httpStatus, body };
  return { accept: false, status: error.httpStatus, body, headers: { 'retry-after': String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))) } };
}
