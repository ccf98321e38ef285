import type { EarshotError } from '../../protocol/errors.js';
import { bearerKey } from '../http/bearer.js';
import type { UpgradeDecision, UpgradeRequest } from '../transport/types.js';

/** A key from `Authorization: Bearer …` or the `?token=` query (browsers cannot set headers). */
export function bearerToken(request: UpgradeRequest): string | undefined {
  return bearerKey(request.headers) ?? request.query.get('token') ?? undefined;
}

/** An HTTP answer to a refused upgrade, with `retry-after` when the error carries a hint. */
export function rejectUpgrade(error: EarshotError): UpgradeDecision {
  const body = JSON.stringify({ error: { code: error.code, message: error.message } });
  if (error.retryAfterMs === undefined) return { accept: false, status: error.httpStatus, body };
  return { accept: false, status: error.httpStatus, body, headers: { 'retry-after': String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))) } };
}
