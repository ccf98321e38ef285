/**
 * A session's audio input, in one shape with three kinds: server VAD on this thread, server VAD
 * on another thread (offloaded: an audio thread, or the listening shard that owns the socket), and manual turns (buffered until the client commits). The
 * door picks the kind; the session only pushes, commits and closes.
 */
import { EarshotError } from '../../protocol/errors.js';
import { joinClips } from '../audio/clip.js';
import type { Decoder } from '../audio/decoder.js';
import { SAMPLE_RATE, type Pcm16k } from '../audio/format.js';
import type { AudioStream } from '../offload/host.js';
import { flushSegmenter, type Segmenter } from '../vad/segmenter.js';

/** Where an input delivers what it hears: the session (VAD transitions go to Session.handleSegment, from the segmenter or the audio thread). */
export interface AudioSink {
  /** Samples decoded here (offloaded audio is not counted): the session's stream clock. */
  received(samples: number): void;
  /** A manual commit: the buffered audio as one utterance. */
  utterance(audio: Pcm16k): void;
}

export interface AudioInput {
  /** One packet of the session's codec, `bytes` from `start` on; throws EarshotError('bad_audio') for bad packets. */
  push(bytes: Uint8Array, start: number, sink: AudioSink): void;
  /**
   * Ends the current utterance now: with VAD, what was heard so far; without, the whole buffer.
   * Returns false if there was nothing (true when another thread decodes: it tells `done`). `done`
   * runs once everything pushed before the commit has been judged and the utterance, if any,
   * delivered (later with Silero or another thread); `committed`: there was something.
   */
  commit(sink: AudioSink, done: (committed: boolean) => void): boolean;
  close(): void;
}

/**
 * Decoding and VAD on this thread. The segmenter delivers its events through the emit it was
 * built with (the session's handleSegment): with Silero some come after a verdict, not during a push.
 */
class VadInput implements AudioInput {
  private readonly decoder: Decoder;
  private readonly segmenter: Segmenter;

  constructor(decoder: Decoder, segmenter: Segmenter) {
    this.decoder = decoder;
    this.segmenter = segmenter;
  }

  push(bytes: Uint8Array, start: number, sink: AudioSink): void {
    const samples = this.decoder.decode(bytes, start);
    sink.received(samples.length);
    this.segmenter.push(samples);
  }

  commit(_sink: AudioSink, done: (committed: boolean) => void): boolean {
    return flushSegmenter(this.segmenter, done);
  }

  close(): void {
    this.decoder.close();
    this.segmenter.close();
  }
}

/** Manual turns: audio is kept until the client commits it, up to `maxUtteranceMs`. */
class ManualInput implements AudioInput {
  private readonly decoder: Decoder;
  private readonly maxUtteranceMs: number;
  private chunks: Pcm16k[] = [];
  private samples = 0;

  constructor(decoder: Decoder, maxUtteranceMs: number) {
    this.decoder = decoder;
    this.maxUtteranceMs = maxUtteranceMs;
  }

  push(bytes: Uint8Array, start: number, sink: AudioSink): void {
    const samples = this.decoder.decode(bytes, start);
    sink.received(samples.length);
    this.samples += samples.length;
    if ((this.samples * 1000) / SAMPLE_RATE > this.maxUtteranceMs)
      throw new EarshotError('limit_exceeded', `audio buffer exceeds ${this.maxUtteranceMs} ms; commit or clear it`);
    // A copy: the decoder's view is reused by its next packet.
    this.chunks.push(samples.slice());
  }

  commit(sink: AudioSink, done: (committed: boolean) => void): boolean {
    if (this.samples === 0) {
      done(false);
      return false;
    }
    const audio = joinClips(this.chunks);
    this.chunks = [];
    this.samples = 0;
    sink.utterance(audio);
    done(true);
    return true;
  }

  close(): void {
    this.decoder.close();
  }
}

/** Decoding and VAD on another thread: its events reach the session through Session.handleSegment. */
class OffloadedInput implements AudioInput {
  private readonly stream: AudioStream;

  constructor(stream: AudioStream) {
    this.stream = stream;
  }

  push(bytes: Uint8Array, start: number): void {
    this.stream.push(bytes, start);
  }

  commit(_sink: AudioSink, done: (committed: boolean) => void): boolean {
    // Ordered after the packets already queued; the utterance arrives through handleSegment, then `done`.
    this.stream.flush(done);
    return true;
  }

  close(): void {
    this.stream.close();
  }
}

/** Input decoded here: with a segmenter, server VAD; without, manual turns capped at `maxUtteranceMs`. */
export function localInput(decoder: Decoder, segmenter: Segmenter | undefined, maxUtteranceMs: number): AudioInput {
  return segmenter ? new VadInput(decoder, segmenter) : new ManualInput(decoder, maxUtteranceMs);
}

export function offloadedInput(stream: AudioStream): AudioInput {
  return new OffloadedInput(stream);
}
