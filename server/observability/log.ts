import { pino, type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs on stderr (stdout stays free for CLI output); keys never appear in them. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'earshot' }, redact: ['token', 'apiKey', 'apiKeys', 'upstreamKey', 'ttsKey', 'headers.authorization', '*.authorization', '*.token', '*.apiKey', '*.apiKeys', '*.upstreamKey', '*.ttsKey'] }, pino.destination(2));
}
