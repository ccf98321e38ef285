/**
 * One error type, three faces: every Earshot error has a stable code that maps to
 * a WebSocket close code (when fatal), an HTTP status and an OpenAI error `type`.
 * Each front door renders the same EarshotError in its own shape.
 */

/** RFC 6455 close codes for ends that are not errors: a finished conversation, and a server (or session) going away. */
export const CLOSE_NORMAL = 1000;
export const CLOSE_GOING_AWAY = 1001;

export const ERROR_CODES = {
  bad_message: { http: 400, close: 1007, openaiType: 'invalid_request_error' },
  bad_audio: { http: 400, close: 1007, openaiType: 'invalid_request_error' },
  unsupported: { http: 400, close: 1003, openaiType: 'invalid_request_error' },
  protocol_order: { http: 400, close: 1008, openaiType: 'invalid_request_error' },
  too_large: { http: 413, close: 1009, openaiType: 'invalid_request_error' },
  unauthorized: { http: 401, close: 1008, openaiType: 'authentication_error' },
  forbidden: { http: 403, close: 1008, openaiType: 'permission_error' },
  not_found: { http: 404, close: 1008, openaiType: 'not_found_error' },
  method_not_allowed: { http: 405, close: 1008, openaiType: 'invalid_request_error' },
  busy: { http: 429, close: 1013, openaiType: 'rate_limit_error' },
  rate_limited: { http: 429, close: 1013, openaiType: 'rate_limit_error' },
  limit_exceeded: { http: 400, close: 1008, openaiType: 'invalid_request_error' },
  idle_timeout: { http: 408, close: CLOSE_GOING_AWAY, openaiType: 'timeout_error' },
  session_expired: { http: 408, close: CLOSE_GOING_AWAY, openaiType: 'timeout_error' },
  engine_error: { http: 502, close: 1011, openaiType: 'server_error' },
  voice_error: { http: 502, close: 1011, openaiType: 'server_error' },
  engine_unavailable: { http: 503, close: 1013, openaiType: 'server_error' },
  overloaded: { http: 503, close: 1013, openaiType: 'server_error' },
  timeout: { http: 504, close: 1011, openaiType: 'timeout_error' },
  shutting_down: { http: 503, close: CLOSE_GOING_AWAY, openaiType: 'server_error' },
  internal: { http: 500, close: 1011, openaiType: 'server_error' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorOptions {
  fatal?: boolean;
  retryable?: boolean;
  retryAfterMs?: number;
  param?: string;
  cause?: unknown;
}

export class EarshotError extends Error {
  readonly code: ErrorCode;
  readonly fatal: boolean;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly param: string | undefined;

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EarshotError';
    this.code = code;
    this.fatal = options.fatal ?? false;
    this.retryable = options.retryable ?? (code === 'busy' || code === 'engine_unavailable');
    this.retryAfterMs = options.retryAfterMs;
    this.param = options.param;
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code].http;
  }

  get closeCode(): number {
    return ERROR_CODES[this.code].close;
  }

  get openaiType(): string {
    return ERROR_CODES[this.code].openaiType;
  }

  /** Errors thrown by our own code keep their message; anything else is hidden from clients. */
  static from(err: unknown): EarshotError {
    if (err instanceof EarshotError) return err;
    return new EarshotError('internal', 'internal error', { cause: err });
  }
}
