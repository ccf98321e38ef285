/**
 * Client events to handlers: a table keyed by event type. Each part of the door registers the
 * events it owns; a second handler for one type is a wiring bug and throws at once.
 */
import type { ClientEvent, ClientEventType } from '../../protocol/realtime.js';
import { RealtimeError } from './wire.js';

export type ClientHandler<T extends ClientEventType> = (event: Extract<ClientEvent, { type: T }>) => void;

export class EventRouter {
  private readonly handlers = new Map<ClientEventType, (event: ClientEvent) => void>();

  on<T extends ClientEventType>(type: T, handler: ClientHandler<T>): this {
    if (this.handlers.has(type)) throw new Error(`a handler for Realtime event '${type}' is already registered`);
    this.handlers.set(type, handler as (event: ClientEvent) => void);
    return this;
  }

  dispatch(event: ClientEvent): void {
    const handler = this.handlers.get(event.type);
    if (!handler) throw new RealtimeError('unsupported', 'unknown_event', `event type '${event.type}' is not supported`, { param: 'type' });
    handler(event);
  }
}
