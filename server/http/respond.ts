import { EarshotError } from '../../protocol/errors.js';
import type { HttpResponse } from '../transport/types.js';

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
  const headers: Record<string, string> = { ...extraHeaders };
  if (error.retryAfterMs !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(error.retryAfterMs / 1000)));
  sendJson(res, error.httpStatus, { error: errorOf(error) }, headers);
}
