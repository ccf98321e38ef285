/**
 * A Realtime connection's outgoing side: ids, server events stamped with an event_id, and
 * errors rendered as Realtime `error` events. Every part of the door sends through it.
 */
import { randomUUID } from 'node:crypto';
import { EarshotError, type ErrorCode, type ErrorOptions } from '../../protocol/errors.js';
import type { ErrorBody, ServerEventBody } from '../../protocol/realtime.js';
import { logClientError, type Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import type { Connection } from '../transport/types.js';

/** An EarshotError with the OpenAI error code a Realtime client expects for this case. */
export class RealtimeError extends EarshotError {
  readonly wireCode: string;
  constructor(code: ErrorCode, wireCode: string, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.wireCode = wireCode;
  }
}

export class RealtimeWire {
  /** The client speaks the beta dialect (event names, item content types, session shape). */
  readonly beta: boolean;
  private readonly idPrefix = randomUUID().replace(/-/g, '').slice(0, 10);
  readonly sessionId = `sess_${this.idPrefix}`;
  readonly conversationId = `conv_${this.idPrefix}`;
  private counter = 0;
  private closed = false;
  private readonly connection: Connection;
  private readonly metrics: Metrics;
  private readonly logger: Logger;

  constructor(connection: Connection, beta: boolean, deps: { metrics: Metrics; logger: Logger }) {
    this.connection = connection;
    this.beta = beta;
    this.metrics = deps.metrics;
    this.logger = deps.logger;
  }

  newId(kind: string): string {
    return `${kind}_${this.idPrefix}${(++this.counter).toString(36)}`;
  }

  send(body: ServerEventBody): void {
    if (this.closed) return;
    this.connection.send(JSON.stringify({ event_id: this.newId('event'), ...body }));
  }

  /** `clientEventId`: the client event that caused the error, when there is one. */
  error(err: unknown, clientEventId: string | undefined): void {
    this.send({ type: 'error', error: this.errorBody(err, clientEventId) });
  }

  /** An error as Realtime shows it (in `error` events and in a failed transcription), counted once. */
  errorBody(err: unknown, clientEventId?: string): ErrorBody {
    const error = EarshotError.from(err);
    logClientError(this.logger, error, { session: this.sessionId, door: 'realtime' });
    this.metrics.errors.inc({ code: error.code });
    return {
      type: error.openaiType,
      code: error instanceof RealtimeError ? error.wireCode : error.code,
      message: error.message,
      param: error.param ?? null,
      event_id: clientEventId ?? null,
    };
  }

  /** The socket is gone: later events (a turn cancelled by the close) go nowhere. */
  close(): void {
    this.closed = true;
  }
}
