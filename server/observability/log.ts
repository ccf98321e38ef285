import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { EarshotError } from '../../protocol/errors.js';

export type { Logger };

const REDACT = ['token', 'apiKey', 'apiKeys', 'upstreamKey', 'ttsKey', 'headers.authorization', '*.authorization', '*.token', '*.apiKey', '*.apiKeys', '*.upstreamKey', '*.ttsKey'];

/**
 * Logs on stderr (stdout stays free for CLI output); keys never appear in them. A person at a
 * terminal reads one line per event (pino-pretty); anything else (a pipe, a file, a log
 * collector) gets JSON lines.
 */
export function createLogger(level: string, options: { pretty?: boolean } = {}): Logger {
  const human = options.pretty ?? process.stderr.isTTY === true;
  const destination = human ? pretty({ destination: 2, sync: true, colorize: true, ignore: 'pid,hostname,service', translateTime: 'SYS:HH:MM:ss.l' }) : pino.destination(2);
  return pino({ level, base: { service: 'earshot' }, redact: REDACT }, destination);
}

/** One line per error a client is sent: warn with its code, or error with the cause for internal ones (whose details the client never sees). */
export function logClientError(logger: Logger, error: EarshotError, fields: Record<string, unknown>): void {
  if (error.code === 'internal') logger.error({ ...fields, err: error.cause }, 'internal error');
  else logger.warn({ ...fields, code: error.code, error: error.message }, 'error sent');
}
