/** The server could not be reached, refused the upgrade, or the connection dropped. */
export class EarshotConnectionError extends Error {
  /** A system error code (ECONNREFUSED, ENOTFOUND...), `http_<status>`, `timeout` or `closed`. */
  readonly code: string;

  constructor(message: string, code: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EarshotConnectionError';
    this.code = code;
  }
}

/** The server answered with an `error` message (its code is one of protocol/errors.ts). */
export class EarshotServerError extends Error {
  readonly code: string;
  readonly fatal: boolean;

  constructor(code: string, message: string, fatal: boolean) {
    super(`${code}: ${message}`);
    this.name = 'EarshotServerError';
    this.code = code;
    this.fatal = fatal;
  }
}
