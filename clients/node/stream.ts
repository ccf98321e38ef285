import { setTimeout as sleep } from 'node:timers/promises';
import type { AudioSource } from './audio.js';
import type { EarshotClient } from './client.js';

export interface StreamOptions {
  /** Send as fast as the socket takes it instead of at real-time pace. */
  fast?: boolean;
  signal?: AbortSignal;
}

/**
 * Sends a source's packets through the client, each when its audio would have been captured
 * (an absolute schedule, so timer lateness does not add up), or back to back with `fast`.
 * Returns the milliseconds of audio sent; stops early if the client closes or `signal` aborts.
 */
export async function streamAudio(client: EarshotClient, source: AudioSource, options: StreamOptions = {}): Promise<number> {
  const start = performance.now();
  let sentMs = 0;
  for await (const packet of source.packets) {
    if (options.signal?.aborted || client.state === 'closed') break;
    if (!options.fast) {
      const wait = start + sentMs - performance.now();
      if (wait > 1) await sleep(wait);
    }
    await client.sendAudio(packet.payload);
    sentMs += packet.durationMs;
  }
  return sentMs;
}

/**
 * Waits until the server has nothing left for us: everything sent has been judged (a commit
 * the server acknowledges: with Silero or audio threads the VAD answers after a websocket ping
 * would), an utterance still open is ended, and every turn (including ones queued behind
 * others, which start as earlier ones end) has finished and has its transcript, if asked for.
 */
export async function settle(client: EarshotClient): Promise<void> {
  await client.commit();
  for (;;) {
    await client.sync();
    const pending = client.pendingTurns;
    const unheard = client.pendingTranscripts;
    if (pending.length === 0 && unheard.length === 0) return;
    await Promise.all([...pending.map((turn) => turn.done), ...unheard.map((turn) => turn.transcript)]);
  }
}
