/**
 * Cuts a 16 kHz stream into utterances with a small state machine (QUIET → STARTING →
 * SPEAKING ⇄ STOPPING → QUIET), in the manner of pipecat's VAD analyzer: milliseconds become
 * frame counts once, and only stable transitions are emitted. Timestamps are stream time
 * (samples received), so faster-than-real-time input segments exactly like real-time input.
 *
 * Who judges a frame (--vad):
 * - webrtc: WebRTC VAD alone, every frame, synchronously.
 * - hybrid: WebRTC VAD on every frame; Silero (a Confirmer, batched across streams) hears the
 *   audio WebRTC calls speech: densely when an episode of it begins, then in spot-checks. Speech
 *   starts only when Silero agrees, and a spoken frame counts only while Silero's last verdict
 *   says speech, so music, tones and typing that fool WebRTC VAD make no turn and end one.
 * - silero: Silero alone, on every chunk.
 * Frames Silero hears wait (in order, with those behind them) until its verdict is back, so the
 * state machine sees the same input at any speed; a start is announced a few ms later than with
 * WebRTC alone but carries the same atMs.
 */
import type { Pcm16k } from '../audio/format.js';
import { CHUNK_SAMPLES, type Confirmer, type ConfirmerStream } from './confirmer.js';
import { WebRtcVad, type FvadModule } from './fvad.js';

export const FRAME_MS = 20;
const FRAME_SAMPLES = 320;
const SAMPLES_PER_MS = 16;
/** Voiced frames in a row that move STOPPING back to SPEAKING; fewer are clicks or noise. */
const RESUME_FRAMES = 3;
/** Audio kept after the last voiced frame, so word endings are not clipped. */
const TAIL_MS = 100;

/** An episode of WebRTC-voiced audio ends after this long unvoiced; the next one starts Silero afresh. */
const EPISODE_GAP_MS = 300;
/** Silero hears every chunk of an episode's first ~0.5 s: long enough to confirm a start past the minimum speech. */
const DENSE_CHUNKS = 16;
/**
 * Then a spot-check of SPOT_WINDOW chunks in every SPOT_EVERY (96 ms of every 256): speech going
 * on, or typing and music since? A window is one verdict, its loudest chunk: Silero fed a window
 * after a gap can dip on one chunk, and a dip mid-sentence must not end the turn.
 */
const SPOT_EVERY = 8;
const SPOT_WINDOW = 3;
/** `sent` marks: a warm-up chunk (no verdict wanted) and a chunk whose verdict waits for the rest of its window. */
const WARM_UP = -1;
const IN_WINDOW = -2;
/** Silero's own hysteresis (its reference iterator): speech ends below threshold - 0.15. */
const NEGATIVE_MARGIN = 0.15;
/** A candidate WebRTC calls speech that Silero has not confirmed this long after the minimum is dropped, and the next frame may start afresh. */
const CONFIRM_WINDOW_MS = 300;
/**
 * Frames waiting for verdicts: real-time input keeps a handful; input sent faster than real time
 * (a file, a test) may run ahead of Silero by this much (30 s, the default utterance cap; the ring
 * grows by doubling only as far as needed). Beyond it the oldest frame is judged on the last
 * verdict rather than held without bound.
 */
const MAX_PENDING_FRAMES = 1500;

export type VadMode = 'webrtc' | 'hybrid' | 'silero';

export interface SegmenterSettings {
  prefixPaddingMs: number;
  silenceMs: number;
  minSpeechMs: number;
  maxUtteranceMs: number;
}

/** What judges the frames: WebRTC VAD, a Silero confirmer, or both (hybrid). */
export interface Judges {
  webrtc: WebRtcVad | undefined;
  confirmer: Confirmer | undefined;
  /** Silero speech probability that counts as speech. */
  threshold: number;
}

export type SegmentEvent =
  | { type: 'speech_started'; atMs: number }
  | { type: 'speech_stopped'; atMs: number; startMs: number; endMs: number; audio: Pcm16k; reason: 'silence' | 'max_length' | 'commit' };

/** Frames in; events out through the `emit` given at creation, during `push` or later (a verdict came back). */
export interface Segmenter {
  push(samples: Pcm16k): void;
  /**
   * Ends the current utterance (manual commit, end of stream) at the audio received so far, once
   * Silero's verdicts on it are back (at once without Silero); emits at most one event. Says
   * whether there is an utterance to end (with verdicts outstanding: whether there may be).
   * `done` runs once the flush is complete and its event, if any, has been emitted: a client can
   * be told that everything it sent before the commit has been judged.
   */
  flush(done?: () => void): boolean;
  readonly speaking: boolean;
  readonly streamMs: number;
  close(): void;
}

const enum State {
  Quiet,
  Starting,
  Speaking,
  Stopping,
}

export class VadSegmenter implements Segmenter {
  private readonly webrtc: WebRtcVad | undefined;
  private readonly silero: ConfirmerStream | undefined;
  private readonly mode: VadMode;
  private readonly threshold: number;
  private readonly emit: (event: SegmentEvent) => void;
  private readonly events: SegmentEvent[] = [];
  private readonly prefixFrames: number;
  private readonly silenceFrames: number;
  private readonly minSpeechFrames: number;
  private readonly maxFrames: number;
  private readonly tailFrames: number;
  private readonly confirmFrames: number;

  private readonly frame = new Float32Array(FRAME_SAMPLES);
  private frameFill = 0;
  /** Frames received; frameIndex counts those the state machine has judged. */
  private arrived = 0;
  private frameIndex = 0;

  /** Received frames awaiting Silero's verdict (and those behind them): audio, WebRTC's call, the sample whose verdict they need. */
  private pendingAudio = new Float32Array(0);
  private pendingVoiced = new Uint8Array(0);
  private pendingNeed = new Float64Array(0);
  private pendingHead = 0;
  private pendingCount = 0;
  /** The frame being judged: a view into pendingAudio or the arrival frame. */
  private current: Float32Array = this.frame;

  /** Silero's episode: contiguous chunks from the first voiced frame until EPISODE_GAP_MS unvoiced. */
  private inEpisode = false;
  private episodeChunk = 0;
  private readonly chunk = new Float32Array(CHUNK_SAMPLES);
  private chunkFill = 0;
  private unvoicedSamples = 0;
  /** The episode began with a warm-up chunk (so its first chunk keeps the state the warm-up left). */
  private warm = false;
  /** The last CHUNK_SAMPLES received: an episode's warm-up, so Silero's state has heard the lead-in. */
  private readonly recent = new Float32Array(CHUNK_SAMPLES);
  /** End sample of each chunk sent, in order; -1 for a warm-up whose verdict no frame needs. */
  private readonly sent = new Float64Array(Math.ceil((MAX_PENDING_FRAMES * FRAME_SAMPLES) / CHUNK_SAMPLES) + 64);
  private sentHead = 0;
  private sentCount = 0;
  private heardUntil = 0;
  private sileroSpeech = false;
  private windowMax = 0;
  /** A flush asked for while verdicts were out: it ends the utterance at frame `flushAt` once `flushWaits` more verdicts are in. */
  private flushAt = Infinity;
  private flushWaits = 0;
  /** Callbacks of flushes still waiting for verdicts, run in order once their flush is complete. */
  private readonly flushDone: (() => void)[] = [];
  private agreed = false;

  /** Audio of the utterance in progress, prefix padding included; grown by doubling, reused. */
  private audio: Float32Array;
  /** Ring of the last prefixFrames frames while quiet. */
  private readonly prefix: Float32Array;
  private prefixFrameCount = 0;
  private prefixHead = 0;

  private state = State.Quiet;
  private startFrame = 0;
  private audioStartFrame = 0;
  private audioFrames = 0;
  private voicedFrames = 0;
  private unvoicedRun = 0;
  private voicedRun = 0;
  private lastVoicedFrame = 0;

  constructor(judges: Judges, settings: SegmenterSettings, emit: (event: SegmentEvent) => void) {
    this.webrtc = judges.webrtc;
    this.silero = judges.confirmer?.open((p) => this.onVerdict(p));
    this.mode = !this.silero ? 'webrtc' : this.webrtc ? 'hybrid' : 'silero';
    if (!this.webrtc && !this.silero) throw new Error('a segmenter needs WebRTC VAD, a Silero confirmer, or both');
    this.threshold = judges.threshold;
    this.emit = emit;
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
    if (this.silero) this.growPending(16);
  }

  get speaking(): boolean {
    return this.state === State.Speaking || this.state === State.Stopping;
  }

  get streamMs(): number {
    return this.arrived * FRAME_MS + this.frameFill / SAMPLES_PER_MS;
  }

  /** No verdict is on its way: every frame received is judged, but those waiting for a chunk more audio will complete. */
  get settled(): boolean {
    return this.sentCount === 0;
  }

  push(samples: Pcm16k): void {
    let offset = 0;
    while (offset < samples.length) {
      const take = Math.min(FRAME_SAMPLES - this.frameFill, samples.length - offset);
      // An element loop, not frame.set(samples.subarray(...)): no view object per push.
      for (let i = 0; i < take; i++) this.frame[this.frameFill + i] = samples[offset + i]!;
      this.frameFill += take;
      offset += take;
      if (this.frameFill === FRAME_SAMPLES) {
        this.frameFill = 0;
        this.arrive();
      }
    }
    this.deliver();
  }

  flush(done?: () => void): boolean {
    if (done) this.flushDone.push(done);
    if (this.sentCount === 0) {
      const speaking = this.flushNow();
      this.deliver();
      this.runFlushDone();
      return speaking;
    }
    this.flushAt = this.arrived;
    this.flushWaits = this.sentCount;
    return this.speaking || this.pendingCount > 0;
  }

  private runFlushDone(): void {
    for (const done of this.flushDone.splice(0)) done();
  }

  /** Judges what is left before the flush point (frames waiting on a chunk no audio will complete) and ends the utterance. */
  private flushNow(): boolean {
    while (this.pendingCount > 0 && this.frameIndex < this.flushAt) this.judgePending();
    this.flushAt = Infinity;
    const speaking = this.speaking;
    if (speaking) this.finish(this.events, 'commit', this.frameIndex);
    else this.reset();
    return speaking;
  }

  close(): void {
    this.webrtc?.close();
    this.silero?.close();
  }

  /** A whole frame has arrived in `this.frame`. */
  private arrive(): void {
    const webrtcVoiced = this.webrtc ? this.webrtc.isSpeech(this.frame) : true;
    this.arrived++;
    if (!this.silero) {
      this.judge(webrtcVoiced, false);
      return;
    }
    const episodeStart = !this.inEpisode && webrtcVoiced;
    if (episodeStart) this.startEpisode();
    const need = this.inEpisode ? this.listen(webrtcVoiced) : 0;
    this.rememberRecent();
    if (this.pendingCount === 0 && need === 0 && !episodeStart && this.flushAt === Infinity) {
      this.judge(webrtcVoiced, this.sileroSpeech);
      return;
    }
    if (this.pendingCount === this.pendingVoiced.length) {
      if (this.pendingCount < MAX_PENDING_FRAMES) this.growPending(Math.min(MAX_PENDING_FRAMES, this.pendingCount * 2));
      else this.judgePending();
    }
    const slot = (this.pendingHead + this.pendingCount) % this.pendingVoiced.length;
    this.pendingAudio.set(this.frame, slot * FRAME_SAMPLES);
    this.pendingVoiced[slot] = webrtcVoiced ? 1 : 0;
    this.pendingNeed[slot] = need;
    this.pendingCount++;
    this.drain();
  }

  /** The pending ring, grown by doubling: frames keep their order, the head moves to slot 0. */
  private growPending(capacity: number): void {
    const audio = new Float32Array(capacity * FRAME_SAMPLES);
    const voiced = new Uint8Array(capacity);
    const need = new Float64Array(capacity);
    for (let i = 0; i < this.pendingCount; i++) {
      const from = (this.pendingHead + i) % this.pendingVoiced.length;
      audio.set(this.pendingAudio.subarray(from * FRAME_SAMPLES, (from + 1) * FRAME_SAMPLES), i * FRAME_SAMPLES);
      voiced[i] = this.pendingVoiced[from]!;
      need[i] = this.pendingNeed[from]!;
    }
    this.pendingAudio = audio;
    this.pendingVoiced = voiced;
    this.pendingNeed = need;
    this.pendingHead = 0;
  }

  private startEpisode(): void {
    this.inEpisode = true;
    this.episodeChunk = 0;
    this.chunkFill = 0;
    this.unvoicedSamples = 0;
    const received = (this.arrived - 1) * FRAME_SAMPLES;
    // Warm-up: the lead-in before the first voiced frame, with fresh recurrent state; its verdict judges no frame.
    this.warm = received >= CHUNK_SAMPLES && this.send(this.recent, true, WARM_UP);
  }

  /** Feeds this frame to the episode's chunks; returns the sample whose verdict the frame needs (0: none). */
  private listen(webrtcVoiced: boolean): number {
    this.unvoicedSamples = webrtcVoiced ? 0 : this.unvoicedSamples + FRAME_SAMPLES;
    const frameEnd = this.arrived * FRAME_SAMPLES;
    let offset = 0;
    let need = 0;
    while (offset < FRAME_SAMPLES) {
      const take = Math.min(CHUNK_SAMPLES - this.chunkFill, FRAME_SAMPLES - offset);
      this.chunk.set(this.frame.subarray(offset, offset + take), this.chunkFill);
      this.chunkFill += take;
      offset += take;
      if (this.chunkFill < CHUNK_SAMPLES) break;
      this.chunkFill = 0;
      const end = frameEnd - FRAME_SAMPLES + offset;
      const k = this.episodeChunk++;
      const rest = this.restOfWindow(k);
      if (this.heard(k) && this.send(this.chunk, k === 0 && !this.warm, rest === 0 ? end : IN_WINDOW) && offset === FRAME_SAMPLES) need = end + rest * CHUNK_SAMPLES;
      // An episode ends between verdicts, never inside a window some frame waits on.
      if (this.mode === 'hybrid' && rest === 0 && this.unvoicedSamples >= EPISODE_GAP_MS * SAMPLES_PER_MS) {
        this.inEpisode = false;
        return need;
      }
    }
    const k = this.episodeChunk;
    if (this.chunkFill > 0 && this.heard(k)) need = frameEnd - this.chunkFill + CHUNK_SAMPLES * (1 + this.restOfWindow(k));
    return need;
  }

  /** Whether Silero hears chunk `k` of an episode. */
  private heard(k: number): boolean {
    return this.mode === 'silero' || k < DENSE_CHUNKS || (k - DENSE_CHUNKS) % SPOT_EVERY < SPOT_WINDOW;
  }

  /** Chunks after `k` in its verdict's window (0: its own verdict, or not heard at all). */
  private restOfWindow(k: number): number {
    if (!this.heard(k) || this.mode === 'silero' || k < DENSE_CHUNKS) return 0;
    return SPOT_WINDOW - 1 - ((k - DENSE_CHUNKS) % SPOT_EVERY);
  }

  /** Queues a chunk for Silero; false (nothing sent, no frame waits) if more are in flight than MAX_PENDING_FRAMES can wait on. */
  private send(chunk: Float32Array, reset: boolean, end: number): boolean {
    if (this.sentCount === this.sent.length) return false;
    this.sent[(this.sentHead + this.sentCount) % this.sent.length] = end;
    this.sentCount++;
    this.silero!.push(chunk, reset);
    return true;
  }

  private rememberRecent(): void {
    this.recent.copyWithin(0, FRAME_SAMPLES);
    this.recent.set(this.frame, CHUNK_SAMPLES - FRAME_SAMPLES);
  }

  private onVerdict(probability: number): void {
    const end = this.sent[this.sentHead]!;
    this.sentHead = (this.sentHead + 1) % this.sent.length;
    this.sentCount--;
    if (this.flushWaits > 0) this.flushWaits--;
    if (end === WARM_UP) {
      // A new episode: what Silero said of the last one no longer holds (frames before it are judged by now).
      this.sileroSpeech = false;
      this.windowMax = 0;
    } else {
      this.windowMax = Math.max(this.windowMax, probability);
      if (end !== IN_WINDOW) {
        const p = this.windowMax;
        this.windowMax = 0;
        if (p >= this.threshold) this.sileroSpeech = true;
        else if (p < this.threshold - NEGATIVE_MARGIN) this.sileroSpeech = false;
        this.heardUntil = end;
      }
    }
    this.drain();
    this.deliver();
    if (this.flushAt === Infinity && this.flushDone.length > 0) this.runFlushDone();
  }

  /** Judges pending frames, oldest first, as far as verdicts have come back. */
  private drain(): void {
    while (this.pendingCount > 0 && this.frameIndex < this.flushAt && this.pendingNeed[this.pendingHead]! <= this.heardUntil) this.judgePending();
    if (this.flushAt !== Infinity && this.flushWaits === 0) {
      this.flushNow();
      this.drain();
    }
  }

  private judgePending(): void {
    const slot = this.pendingHead;
    this.pendingHead = (slot + 1) % this.pendingVoiced.length;
    this.pendingCount--;
    this.current = this.pendingAudio.subarray(slot * FRAME_SAMPLES, (slot + 1) * FRAME_SAMPLES);
    this.judge(this.pendingVoiced[slot] === 1, this.sileroSpeech);
    this.current = this.frame;
  }

  private deliver(): void {
    if (this.events.length === 0) return;
    for (const event of this.events) this.emit(event);
    this.events.length = 0;
  }

  /** One frame, in stream order, with what WebRTC VAD and Silero's latest verdict say of it. */
  private judge(webrtcVoiced: boolean, sileroSpeech: boolean): void {
    const voiced = this.mode === 'webrtc' ? webrtcVoiced : this.mode === 'silero' ? sileroSpeech : webrtcVoiced && sileroSpeech;
    // Hybrid starts on WebRTC's call so atMs is its onset; Silero must agree before the start is announced.
    const onset = this.mode === 'hybrid' ? webrtcVoiced : voiced;
    this.onFrame(onset, voiced, sileroSpeech || this.mode !== 'hybrid', this.events);
    this.frameIndex++;
  }

  private onFrame(onset: boolean, voiced: boolean, agrees: boolean, events: SegmentEvent[]): void {
    const index = this.frameIndex;
    switch (this.state) {
      case State.Quiet:
        if (onset) {
          this.beginCandidate(index);
          this.agreed = onset && agrees;
          this.appendFrame();
        } else this.rememberPrefix();
        return;
      case State.Starting:
        this.appendFrame();
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
        this.appendFrame();
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
      this.appendSamples(this.prefix.subarray(slot * FRAME_SAMPLES, (slot + 1) * FRAME_SAMPLES));
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
      this.prefix.set(this.audio.subarray(f * FRAME_SAMPLES, (f + 1) * FRAME_SAMPLES), this.prefixHead * FRAME_SAMPLES);
      this.prefixHead = (this.prefixHead + 1) % Math.max(1, this.prefixFrames);
      this.prefixFrameCount++;
    }
    this.audioFrames = 0;
  }

  private rememberPrefix(): void {
    if (this.prefixFrames === 0) return;
    this.prefix.set(this.current, this.prefixHead * FRAME_SAMPLES);
    this.prefixHead = (this.prefixHead + 1) % this.prefixFrames;
    if (this.prefixFrameCount < this.prefixFrames) this.prefixFrameCount++;
  }

  private appendFrame(): void {
    this.appendSamples(this.current);
  }

  private appendSamples(samples: Float32Array): void {
    const at = this.audioFrames * FRAME_SAMPLES;
    if (at + FRAME_SAMPLES > this.audio.length) {
      const grown = new Float32Array(this.audio.length * 2);
      grown.set(this.audio.subarray(0, at));
      this.audio = grown;
    }
    this.audio.set(samples, at);
    this.audioFrames++;
  }
}

/** WebRTC VAD alone, judging synchronously: a whole file at once (REST transcriptions); `module` from loadFvad. */
export function createSegmenter(module: FvadModule, aggressiveness: number, settings: SegmenterSettings, emit: (event: SegmentEvent) => void): VadSegmenter {
  return new VadSegmenter({ webrtc: new WebRtcVad(module, aggressiveness), confirmer: undefined, threshold: 0 }, settings, emit);
}
