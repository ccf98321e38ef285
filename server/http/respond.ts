import { EarshotError } from '../../protocol/errors.js';
import type { HttpResponse, UpgradeDecision } from '../transport/types.js';

export function sendJson(res: HttpResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)), ...headers });
  res.end(payload);
}

/** The `error` member of OpenAI's error shape. */
export function errorOf(error: EarshotError) {
  return { message: error.message, type: error.openaiType, param: error.param ?? null, code: error.code };
}

/** OpenAI's error shape, with retry-after where the error carries a hint. Internal errors never leak details. */
export function sendError(res: HttpResponse, err: unknown, extraHeaders: Record<string, string> = {}): void {
  const error = EarshotError.from(err);
  sendJson(res, error.httpStatus, { error: errorOf(error) }, { ...extraHeaders, ...retryAfter(error) });
}

/** An HTTP answer to a refused websocket upgrade, with `retry-after` when the error carries a hint. */
export function rejectUpgrade(error: EarshotError): UpgradeDecision {
  const body = JSON.stringify({ error: { code: error.code, message: error.message } });
  return { accept: false, status: error.httpStatus, body, headers: retryAfter(error) };
}

/** `retry-after` in whole seconds (at least 1), when the error says when to come back. */
function retryAfter(error: EarshotError): Record<string, string> {
  return error.retryAfterMs === undefined ? {} : { 'retry-after': String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))) };
}
