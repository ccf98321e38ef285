import type { EarshotError } from '../../protocol/errors.js';
import type { UpgradeDecision, UpgradeRequest } from '../transport/types.js';

/** A key from `Authorization: Bearer …` or the `?token=` query (browsers cannot set headers). */
export function bearerToken(request: UpgradeRequest): string | undefined {
  const header = request.headers['authorization'];
  if (header?.toLowerCase().startsWith('bearer ')) return header.slice(7).trim();
  return request.query.get('token') ?? undefined;
}

export function rejectUpgrade(error: EarshotError): UpgradeDecision {
  return { accept: false, status: error.httpStatus, body: JSON.stringify({ error: { code: error.code, message: error.message } }) };
}
