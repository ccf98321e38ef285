/**
 * The utterance state machine (QUIET → STARTING → SPEAKING ⇄ STOPPING → QUIET), in the manner
 * of pipecat's VAD analyzer: milliseconds become frame counts once, and only stable transitions
 * are emitted. It is told, frame by frame in stream order, what the judges said of each frame;
 * who the judges are (WebRTC VAD, Silero, both) is the segmenter's business. It keeps the
 * prefix-padding ring and the audio of the utterance in progress, both reused.
 */
import type { Pcm16k } from '../audio/format.js';

export const FRAME_MS = 20;
export const FRAME_SAMPLES = 320;
/** Voiced frames in a row that move STOPPING back to SPEAKING; fewer are clicks or noise. */
const RESUME_FRAMES = 3;
/** Audio kept after the last voiced frame, so word endings are not clipped. */
const TAIL_MS = 100;
/** A candidate WebRTC calls speech that Silero has not confirmed this long after the minimum is dropped, and the next frame may start afresh. */
const CONFIRM_WINDOW_MS = 300;

export interface SegmenterSettings {
  prefixPaddingMs: number;
  silenceMs: number;
  minSpeechMs: number;
  maxUtteranceMs: number;
}

export type SegmentEvent =
  | { type: 'speech_started'; atMs: number }
  | { type: 'speech_stopped'; atMs: number; startMs: number; endMs: number; audio: Pcm16k; reason: 'silence' | 'max_length' | 'commit' }
  /** Silero's verdicts will never come (inference failed after start): the segmenter stops, and its session must end. */
  | { type: 'failed'; message: string };

const enum State {
  Quiet,
  Starting,
  Speaking,
  Stopping,
}

export class Utterance {
  private readonly prefixFrames: number;
  private readonly silenceFrames: number;
  private readonly minSpeechFrames: number;
  private readonly maxFrames: number;
  private readonly tailFrames: number;
  private readonly confirmFrames: number;

  /** Audio of the utterance in progress, prefix padding included; grown by doubling, reused. */
  private audio: Float32Array;
  /** Ring of the last prefixFrames frames while quiet. */
  private readonly prefix: Float32Array;
  private prefixFrameCount = 0;
  private prefixHead = 0;

  private state = State.Quiet;
  /** Frames judged so far: the index of the next one. */
  private index = 0;
  private startFrame = 0;
  private audioStartFrame = 0;
  private audioFrames = 0;
  private voicedFrames = 0;
  private unvoicedRun = 0;
  private voicedRun = 0;
  private lastVoicedFrame = 0;
  private agreed = false;

  constructor(settings: SegmenterSettings) {
    const frames = (ms: number) => Math.max(0, Math.round(ms / FRAME_MS));
    this.prefixFrames = frames(settings.prefixPaddingMs);
    this.silenceFrames = Math.max(1, frames(settings.silenceMs));
    this.minSpeechFrames = Math.max(1, frames(settings.minSpeechMs));
    // Rounded down: the cap is a promise about what reaches the model, so it may only err short.
    this.maxFrames = Math.max(1, Math.floor(settings.maxUtteranceMs / FRAME_MS));
    this.tailFrames = Math.min(frames(TAIL_MS), this.silenceFrames);
    this.confirmFrames = this.minSpeechFrames + frames(CONFIRM_WINDOW_MS);
    this.prefix = new Float32Array(Math.max(1, this.prefixFrames) * FRAME_SAMPLES);
    this.audio = new Float32Array(FRAME_SAMPLES * 64);
  }

  get speaking(): boolean {
    return this.state === State.Speaking || this.state === State.Stopping;
  }

  /** Frames judged so far. */
  get judged(): number {
    return this.index;
  }

  /**
   * One frame (FRAME_SAMPLES of `samples` from `from` on; copied, not kept). `onset`: may this frame start a
   * candidate; `voiced`: does it count as speech; `agrees`: does Silero back the candidate (always
   * true without Silero). Events go to `events`.
   */
  frame(samples: Float32Array, from: number, onset: boolean, voiced: boolean, agrees: boolean, events: SegmentEvent[]): void {
    const index = this.index++;
    switch (this.state) {
      case State.Quiet:
        if (onset) {
          this.beginCandidate(index);
          this.agreed = agrees;
          this.append(samples, from);
        } else this.rememberPrefix(samples, from);
        return;
      case State.Starting:
        this.append(samples, from);
        if (onset) {
          this.agreed ||= agrees;
          this.voicedFrames++;
          this.unvoicedRun = 0;
          this.lastVoicedFrame = index;
          if (this.voicedFrames >= this.minSpeechFrames && this.agreed) {
            this.state = State.Speaking;
            events.push({ type: 'speech_started', atMs: this.startFrame * FRAME_MS });
          } else if (index - this.startFrame >= this.confirmFrames) {
            // WebRTC hears speech that Silero does not: drop the candidate; a later frame may start afresh.
            this.state = State.Quiet;
            this.rewindToPrefix();
          }
        } else if (++this.unvoicedRun >= this.silenceFrames || this.unvoicedRun > this.minSpeechFrames) {
          // A blip shorter than the minimum speech: drop it, keep its frames as prefix.
          this.state = State.Quiet;
          this.rewindToPrefix();
        }
        return;
      case State.Speaking:
      case State.Stopping:
        this.append(samples, from);
        if (voiced) {
          this.voicedRun++;
          if (this.state === State.Speaking || this.voicedRun >= RESUME_FRAMES) {
            this.state = State.Speaking;
            this.lastVoicedFrame = index;
            this.unvoicedRun = 0;
          } else this.unvoicedRun++;
        } else {
          this.voicedRun = 0;
          this.unvoicedRun++;
          this.state = State.Stopping;
        }
        if (this.state === State.Stopping && this.unvoicedRun >= this.silenceFrames) this.finish(events, 'silence', index + 1);
        // The prefix padding counts toward the cap (audioFrames holds it too): the cap bounds the
        // audio handed to the model, and padding is audio like any other.
        else if (this.audioFrames >= this.maxFrames) {
          this.finish(events, 'max_length', index + 1);
          if (voiced) {
            // Still talking: the cut continues as a new utterance right away.
            this.beginCandidate(index + 1);
            this.voicedFrames = this.minSpeechFrames;
            this.state = State.Speaking;
            events.push({ type: 'speech_started', atMs: (index + 1) * FRAME_MS });
          }
        }
        return;
    }
  }

  /** Ends the utterance here (a commit): one speech_stopped if speaking, else the candidate and prefix are dropped. Says whether it was speaking. */
  commit(events: SegmentEvent[]): boolean {
    const speaking = this.speaking;
    if (speaking) this.finish(events, 'commit', this.index);
    else this.reset();
    return speaking;
  }

  private beginCandidate(index: number): void {
    this.state = State.Starting;
    this.startFrame = index;
    this.lastVoicedFrame = index;
    this.voicedFrames = 1;
    this.unvoicedRun = 0;
    this.voicedRun = 0;
    // The utterance audio starts with the prefix ring, oldest frame first.
    this.audioFrames = 0;
    this.audioStartFrame = index - this.prefixFrameCount;
    for (let i = 0; i < this.prefixFrameCount; i++) {
      const slot = (this.prefixHead - this.prefixFrameCount + i + this.prefixFrames) % this.prefixFrames;
      this.append(this.prefix, slot * FRAME_SAMPLES);
    }
    this.prefixFrameCount = 0;
  }

  private finish(events: SegmentEvent[], reason: 'silence' | 'max_length' | 'commit', atFrame: number): void {
    const endFrame = Math.min(this.lastVoicedFrame + 1 + this.tailFrames, this.audioStartFrame + this.audioFrames);
    // The cap check only runs once speaking, so padding plus a slow STARTING (or a minimum speech
    // longer than the cap) can already hold more than maxFrames; the oldest audio, padding first, goes.
    const fromFrame = Math.max(this.audioStartFrame, endFrame - this.maxFrames);
    const audio = this.audio.slice((fromFrame - this.audioStartFrame) * FRAME_SAMPLES, (endFrame - this.audioStartFrame) * FRAME_SAMPLES);
    events.push({
      type: 'speech_stopped',
      atMs: atFrame * FRAME_MS,
      startMs: this.startFrame * FRAME_MS,
      endMs: (this.lastVoicedFrame + 1) * FRAME_MS,
      audio,
      reason,
    });
    this.reset();
  }

  private reset(): void {
    this.state = State.Quiet;
    this.audioFrames = 0;
    this.prefixFrameCount = 0;
    this.voicedFrames = 0;
    this.unvoicedRun = 0;
    this.voicedRun = 0;
  }

  /** A dropped blip: its last frames become the prefix of whatever comes next. */
  private rewindToPrefix(): void {
    const keep = Math.min(this.prefixFrames, this.audioFrames);
    this.prefixFrameCount = 0;
    this.prefixHead = 0;
    for (let f = this.audioFrames - keep; f < this.audioFrames; f++) {
      copyFrame(this.audio, f * FRAME_SAMPLES, this.prefix, this.prefixHead * FRAME_SAMPLES);
      this.prefixHead = (this.prefixHead + 1) % Math.max(1, this.prefixFrames);
      this.prefixFrameCount++;
    }
    this.audioFrames = 0;
  }

  private rememberPrefix(samples: Float32Array, from: number): void {
    if (this.prefixFrames === 0) return;
    copyFrame(samples, from, this.prefix, this.prefixHead * FRAME_SAMPLES);
    this.prefixHead = (this.prefixHead + 1) % this.prefixFrames;
    if (this.prefixFrameCount < this.prefixFrames) this.prefixFrameCount++;
  }

  /** Appends the frame at `from` in `samples`. */
  private append(samples: Float32Array, from: number): void {
    const at = this.audioFrames * FRAME_SAMPLES;
    if (at + FRAME_SAMPLES > this.audio.length) {
      const grown = new Float32Array(this.audio.length * 2);
      grown.set(this.audio.subarray(0, at));
      this.audio = grown;
    }
    copyFrame(samples, from, this.audio, at);
    this.audioFrames++;
  }
}

/** One frame from `from` in `source` to `to` in `target`: an element loop, not set(subarray(...)), so no view per frame. */
function copyFrame(source: Float32Array, from: number, target: Float32Array, to: number): void {
  for (let i = 0; i < FRAME_SAMPLES; i++) target[to + i] = source[from + i]!;
}
