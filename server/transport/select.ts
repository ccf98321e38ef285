import type { Logger } from '../observability/log.js';
import type { Transport, TransportOptions } from './types.js';
import { ShardedTransport, type ShardOptions } from './sharded.js';
import { loadUws, UwsTransport } from './uws.js';
import { WsTransport } from './ws.js';

/** uws when asked and a build loads (on `shards` threads when more than one); otherwise ws (one thread, whatever `shards` says), saying why. */
export function createTransport(kind: 'uws' | 'ws', options: TransportOptions, logger: Logger, shards: ShardOptions & { count: number } = { count: 1, maxBodyBytes: 0, maxMessageBytes: 0, silero: undefined }): Transport {
  if (kind === 'uws') {
    const loaded = loadUws();
    if (loaded.module && loaded.build) return shards.count > 1 ? new ShardedTransport(shards.count, shards, loaded.build, options, logger) : new UwsTransport(loaded.module, loaded.build, options);
    logger.warn({ failures: loaded.failures }, 'no uWebSockets.js build loads on this platform; falling back to the ws transport');
  }
  return new WsTransport(options);
}
