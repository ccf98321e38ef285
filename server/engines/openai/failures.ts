import { EarshotError } from '../../../protocol/errors.js';

/** Enough of an error body to show its message; upstream error pages can be large. */
const MAX_ERROR_BODY_CHARS = 2048;
/** A retry-after beyond this is not worth holding a turn for: the client hears `busy` instead. */
export const MAX_RETRY_AFTER_MS = 10_000;

/** `retry-after-ms` (OpenAI's), else `retry-after` in seconds or as an HTTP date. */
export function retryAfterMs(headers: Headers, now = Date.now()): number | undefined {
  const ms = Number(headers.get('retry-after-ms') ?? NaN);
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers.get('retry-after');
  if (value === null) return undefined;
  const seconds = Number(value);
  if (value.trim() !== '' && Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

async function upstreamMessage(response: Response): Promise<string> {
  const text = (await response.text().catch(() => '')).slice(0, MAX_ERROR_BODY_CHARS);
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    const message = typeof parsed.error === 'string' ? parsed.error : (parsed.error?.message ?? parsed.message);
    if (typeof message === 'string') return message;
  } catch {
    // Not JSON: show the start of the text as it is.
  }
  return text.trim().slice(0, 200) || response.statusText;
}

/**
 * One EarshotError per upstream HTTP failure. `retryable` is also the engine's own rule:
 * only retryable failures are retried, and only before the first token.
 */
export async function httpFailure(response: Response, upstream: string, model: string): Promise<EarshotError> {
  const status = response.status;
  const detail = await upstreamMessage(response);
  if (status === 401 || status === 403)
    return new EarshotError('engine_error', `upstream ${upstream} refused our credentials (${status}): check the upstream API key`);
  if (status === 404) return new EarshotError('not_found', `upstream ${upstream} has no model "${model}" (404: ${detail})`);
  if (status === 429)
    return new EarshotError('busy', `upstream ${upstream} is busy (429: ${detail})`, { retryable: true, retryAfterMs: retryAfterMs(response.headers) });
  if (status >= 500) return new EarshotError('engine_error', `upstream ${upstream} failed (${status}: ${detail})`, { retryable: true });
  return new EarshotError('engine_error', `upstream ${upstream} rejected the request (${status}: ${detail})`);
}

/** fetch() rejects with TypeError('fetch failed') and the socket error as its cause. */
export function connectionFailure(err: unknown, upstream: string, stage: 'connect' | 'stream'): EarshotError {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const reason = cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
  const message = stage === 'connect' ? `cannot reach upstream ${upstream} (${reason})` : `upstream ${upstream} broke the stream (${reason})`;
  return new EarshotError(stage === 'connect' ? 'engine_unavailable' : 'engine_error', message, { retryable: true, cause: err });
}
