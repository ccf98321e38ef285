/**
 * The streams one worker thread decodes and segments, posting back only what the session needs
 * (ThreadEvent: VAD transitions with the utterance, flush answers, errors). An audio thread feeds
 * it from its ring; a listening shard feeds it straight from its sockets. Both run the same
 * Decoder and VadSegmenter as the event-loop path, so segmentation is identical everywhere.
 */
import { EarshotError } from '../../protocol/errors.js';
import type { Decoder } from '../audio/decoder.js';
import { createDecoder } from '../audio/select.js';
import type { Confirmer } from '../vad/confirmer.js';
import { loadFvad } from '../vad/fvad.js';
import { segmenterFor } from '../vad/judging.js';
import { flushSegmenter, type SegmentEvent, type VadSegmenter } from '../vad/segmenter.js';
import type { StreamSpec, ThreadEvent } from './messages.js';

interface Stream {
  decoder?: Decoder;
  segmenter?: VadSegmenter;
  /** Samples decoded so far (16 kHz): where the socket's next stream starts on its timeline. */
  samples: number;
  /** What arrived while the decoder was starting, in order (packets copied). */
  waiting: Array<() => void> | undefined;
}

export class AudioStreams {
  private readonly streams = new Map<number, Stream>();

  /**
   * `confirmer`: this thread's Silero batcher, asked for when a stream needs one (none with --vad webrtc).
   * `post` carries events to the event-loop thread; a speech_stopped event's audio may be transferred.
   */
  constructor(
    private readonly confirmer: () => Promise<Confirmer | undefined>,
    private readonly post: (event: ThreadEvent) => void,
  ) {}

  get size(): number {
    return this.streams.size;
  }

  /** Resolves once the stream decodes; what comes for it meanwhile waits, in order. */
  async open(id: number, spec: StreamSpec): Promise<void> {
    const stream: Stream = { waiting: [], samples: 0 };
    this.streams.set(id, stream);
    try {
      const decoder = await createDecoder(spec.audio);
      const confirmer = spec.judging.mode === 'webrtc' ? undefined : await this.confirmer();
      stream.decoder = decoder;
      stream.segmenter = segmenterFor(await loadFvad(), spec.judging, spec.segmenter, confirmer, (event) => this.emit(id, event));
    } catch (err) {
      // Nothing will be judged for this stream (its codec was validated before; this is Silero not starting): the session must end.
      this.streams.delete(id);
      this.post({ stream: id, type: 'failed', message: (err as Error).message });
      return;
    }
    const waiting = stream.waiting!;
    stream.waiting = undefined;
    if (this.streams.get(id) !== stream) {
      // Closed while it started.
      stream.decoder?.close();
      stream.segmenter?.close();
      return;
    }
    for (const run of waiting) run();
  }

  /** The packet is `bytes[start, end)`, only read during the call. */
  push(id: number, bytes: Uint8Array, start = 0, end = bytes.length): void {
    const stream = this.streams.get(id);
    if (!stream) return;
    if (stream.waiting) {
      const copy = bytes.slice(start, end);
      stream.waiting.push(() => this.push(id, copy));
      return;
    }
    try {
      const samples = stream.decoder!.decode(bytes, start, end);
      stream.samples += samples.length;
      stream.segmenter!.push(samples);
    } catch (err) {
      this.error(id, err);
    }
  }

  /** Answers with a `flushed` event once everything pushed before is judged and its utterance, if any, posted. */
  flush(id: number): void {
    const stream = this.streams.get(id);
    if (!stream) return this.post({ stream: id, type: 'flushed', committed: false });
    if (stream.waiting) return void stream.waiting.push(() => this.flush(id));
    flushSegmenter(stream.segmenter!, (committed) => this.post({ stream: id, type: 'flushed', committed }));
  }

  /** Samples stream `id` has decoded (packets still waiting for its decoder are not counted). */
  decoded(id: number): number {
    return this.streams.get(id)?.samples ?? 0;
  }

  close(id: number): void {
    const stream = this.streams.get(id);
    if (!stream) return;
    this.streams.delete(id);
    if (stream.waiting) return;
    stream.decoder!.close();
    stream.segmenter!.close();
  }

  closeAll(): void {
    for (const id of [...this.streams.keys()]) this.close(id);
  }

  private emit(stream: number, event: SegmentEvent): void {
    if (event.type === 'speech_started') this.post({ stream, type: 'speech_started', atMs: event.atMs });
    else if (event.type === 'failed') this.post({ stream, type: 'failed', message: event.message });
    else this.post({ stream, type: 'speech_stopped', atMs: event.atMs, startMs: event.startMs, endMs: event.endMs, reason: event.reason, audio: event.audio });
  }

  private error(stream: number, err: unknown): void {
    const error = EarshotError.from(err);
    this.post({ stream, type: 'error', code: error.code, message: error.message });
  }
}
