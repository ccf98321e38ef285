/**
 * Where a session's decoding and VAD run off its event loop: an audio thread (--audio-threads), or
 * the listening shard that owns its socket (--shards). Either way the session holds an AudioStream
 * and hears back the same ThreadEvents, delivered here.
 */
import { EarshotError } from '../../protocol/errors.js';
import type { SegmentEvent } from '../vad/segmenter.js';
import type { StreamSpec, ThreadEvent } from './messages.js';

export interface StreamHandlers {
  segment(event: SegmentEvent): void;
  /** Bad packets (non-fatal) and a failed thread (fatal). */
  error(error: EarshotError): void;
}

/** A stream's handle on the event-loop thread. */
export interface AudioStream {
  /** Queues one packet (`bytes` from `start` on) for the stream's thread; throws EarshotError('busy') when that thread is too far behind. */
  push(bytes: Uint8Array, start: number): void;
  /** `done` runs once the thread has judged every packet before the flush and delivered its utterance, if any (`committed`: there was speech to end). */
  flush(done: (committed: boolean) => void): void;
  close(): void;
}

export interface AudioHost {
  attach(spec: StreamSpec, handlers: StreamHandlers): AudioStream;
}

/** A stream's handlers and the callbacks of its flushes the thread has yet to finish, oldest first. */
export interface StreamEntry extends StreamHandlers {
  flushDone: ((committed: boolean) => void)[];
}

/** Hands one event from a stream's thread to its session. */
export function deliverEvent(entry: StreamEntry, event: ThreadEvent): void {
  if (event.type === 'error') entry.error(new EarshotError(event.code as EarshotError['code'], event.message));
  else if (event.type === 'flushed') entry.flushDone.shift()?.(event.committed);
  else if (event.type === 'speech_started') entry.segment({ type: 'speech_started', atMs: event.atMs });
  else if (event.type === 'failed') entry.segment(event);
  else entry.segment({ type: 'speech_stopped', atMs: event.atMs, startMs: event.startMs, endMs: event.endMs, reason: event.reason, audio: event.audio });
}
