import type { Logger } from '../observability/log.js';
import type { Transport, TransportOptions } from './types.js';
import { loadUws, UwsTransport } from './uws.js';
import { WsTransport } from './ws.js';

/** uws when asked and a build loads; otherwise ws, saying why. */
export function createTransport(kind: 'uws' | 'ws', options: TransportOptions, logger: Logger): Transport {
  if (kind === 'uws') {
    const loaded = loadUws();
    if (loaded.module && loaded.build) return new UwsTransport(loaded.module, loaded.build, options);
    logger.warn({ failures: loaded.failures }, 'no uWebSockets.js build loads on this platform; falling back to the ws transport');
  }
  return new WsTransport(options);
}
