/**
 * Cuts a 16 kHz stream into utterances: frames are judged here and handed, in stream order, to
 * the utterance state machine (utterance.ts). Timestamps are stream time (samples received), so
 * faster-than-real-time input segments exactly like real-time input.
 *
 * Who judges a frame (--vad):
 * - webrtc: WebRTC VAD alone, every frame, synchronously.
 * - hybrid: WebRTC VAD on every frame; Silero (a Confirmer, batched across streams) hears the
 *   audio WebRTC calls speech: densely when an episode of it begins, then in spot-checks. Speech
 *   starts only when Silero agrees, and a spoken frame counts only while Silero's last verdict
 *   says speech, so music, tones and typing that fool WebRTC VAD make no turn and end one.
 * - silero: Silero alone, on every chunk.
 * Frames whose judgement needs Silero wait (in order, with those behind them) until its verdict
 * is back, so the state machine sees the same input at any speed; a start is announced up to the
 * onset wait (--vad-onset-wait-ms, 64 by default) plus ~35 ms later than with WebRTC alone, but
 * carries the same atMs. In hybrid a frame WebRTC calls unvoiced needs no verdict, so the end of
 * a turn waits for none unless the silence rule is shorter than the ~200 ms the last voiced frame
 * may wait for its spot-check.
 */
import type { Pcm16k } from '../audio/format.js';
import { CHUNK_SAMPLES, type ChunkPurpose, type Confirmer, type ConfirmerStream } from './confirmer.js';
import type { WebRtcVad } from './fvad.js';
import { PendingFrames } from './pending.js';
import { FRAME_MS, FRAME_SAMPLES, Utterance, type SegmentEvent, type SegmenterSettings } from './utterance.js';

export { FRAME_MS, type SegmentEvent, type SegmenterSettings };

const SAMPLES_PER_MS = 16;

/** An episode of WebRTC-voiced audio ends after this long unvoiced; the next one starts Silero afresh. */
const EPISODE_GAP_MS = 300;
/**
 * Silero hears every chunk of an episode's first ~0.3 s: long enough to confirm a start past the
 * minimum speech (200 ms by default; a longer one is confirmed on the spot-checks that follow).
 * 16 chunks (~0.5 s) gave the same turns, boundaries and noise verdicts in bench/vad.ts's
 * accuracy part with 14% more chunks (9.5 against 8.2 per stream-second).
 */
const DENSE_CHUNKS = 10;
/**
 * Then a spot-check of SPOT_WINDOW chunks in every SPOT_EVERY (96 ms of every 384): speech going
 * on, or typing and music since? A window is one verdict, its loudest chunk: Silero fed a window
 * after a gap can dip on one chunk, and a dip mid-sentence must not end the turn. One in 12 (not
 * 8) hears a fifth fewer chunks of ongoing speech (bench/vad.ts, cpu: 11.8 → 9.6 chunks per
 * stream-second on the speech fixtures), with the same boundaries on real speech; typing after
 * speech ends the turn up to a window later (128 ms). One in 16 let typing hold it too long.
 * Windows of 2 chunks (6.5 rather than 8.2 chunks per stream-second) passed bench/vad.ts's
 * accuracy part but cut 7 of the sentences of test/integration/concurrency.test.ts's 50 fixtures.
 */
const SPOT_EVERY = 12;
const SPOT_WINDOW = 3;
/** `sent` marks: a warm-up chunk (no verdict wanted) and a chunk whose verdict waits for the rest of its window. */
const WARM_UP = -1;
const IN_WINDOW = -2;
/**
 * An episode's first chunk starts this long before WebRTC's first voiced frame. Silero v5 reads
 * an attack at the very start of a chunk after silence as speech (a tremolo chord: 0.89 there,
 * 0.07 when the attack falls 320 samples in), and an episode's chunks would otherwise always put
 * the attack there; with a 16 ms lead-in, hybrid made no turn of the music, clicks or chord at
 * any of 16 offsets after silence (v4 still takes the chord for speech at half of them).
 */
const LEAD_IN = 256;
/**
 * Hysteresis: once speech, Silero's verdict stays speech until it falls below threshold - this.
 * Silero's own iterator uses 0.15 (0.5 in, 0.35 out); with v5's default threshold of 0.8 that let
 * a soft sentence end go 230 ms early (test/integration/concurrency.test.ts, fixture 25), so
 * speech ends below 0.5 here (bench/vad.ts's accuracy part gives the same figures with it).
 */
const NEGATIVE_MARGIN = 0.3;
/**
 * Frames waiting for verdicts: real-time input keeps a handful; input sent faster than real time
 * (a file, a test) may run ahead of Silero by this much (30 s, the default utterance cap; the ring
 * grows by doubling only as far as needed). Beyond it the oldest frame is judged on the last
 * verdict rather than held without bound.
 */
const MAX_PENDING_FRAMES = 1500;

export type VadMode = 'webrtc' | 'hybrid' | 'silero';

/** What judges the frames: WebRTC VAD, a Silero confirmer, or both (hybrid). */
export interface Judges {
  webrtc: WebRtcVad | undefined;
  confirmer: Confirmer | undefined;
  /** Silero speech probability that counts as speech. */
  threshold: number;
}

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

export class VadSegmenter implements Segmenter {
  private readonly webrtc: WebRtcVad | undefined;
  private readonly silero: ConfirmerStream | undefined;
  private readonly mode: VadMode;
  private readonly threshold: number;
  private readonly emit: (event: SegmentEvent) => void;
  private readonly events: SegmentEvent[] = [];
  private readonly utterance: Utterance;

  private readonly frame = new Float32Array(FRAME_SAMPLES);
  private frameFill = 0;
  /** Frames received (the utterance counts those judged). */
  private arrived = 0;
  /** Received frames awaiting Silero's verdict, and those behind them. */
  private readonly pending: PendingFrames | undefined;

  /** Silero's episode: contiguous chunks from the first voiced frame until EPISODE_GAP_MS unvoiced. */
  private inEpisode = false;
  private episodeChunk = 0;
  private readonly chunk = new Float32Array(CHUNK_SAMPLES);
  private chunkFill = 0;
  private unvoicedSamples = 0;
  /** The episode began with a warm-up chunk (so its first chunk keeps the state the warm-up left). */
  private warm = false;
  /** The last CHUNK_SAMPLES + LEAD_IN received: an episode's warm-up (so Silero's state has heard what came before) and lead-in. */
  private readonly recent = new Float32Array(CHUNK_SAMPLES + LEAD_IN);
  /** End sample of each chunk sent, in order; -1 for a warm-up whose verdict no frame needs. */
  private readonly sent = new Float64Array(Math.ceil((MAX_PENDING_FRAMES * FRAME_SAMPLES) / CHUNK_SAMPLES) + 64);
  private sentHead = 0;
  private sentCount = 0;
  private heardUntil = 0;
  /** End sample of the last verdict asked for (heardUntil once it is back). */
  private askedUntil = 0;
  private sileroSpeech = false;
  private windowMax = 0;
  /** A flush asked for while verdicts were out: it ends the utterance at frame `flushAt` once `flushWaits` more verdicts are in. */
  private flushAt = Infinity;
  private flushWaits = 0;
  /** Callbacks of flushes still waiting for verdicts, run in order once their flush is complete. */
  private readonly flushDone: (() => void)[] = [];
  /** Callbacks waiting until no verdict is out (settle). */
  private readonly settleDone: (() => void)[] = [];
  /** Silero failed: nothing more is judged. */
  private failed = false;

  constructor(judges: Judges, settings: SegmenterSettings, emit: (event: SegmentEvent) => void) {
    this.webrtc = judges.webrtc;
    this.silero = judges.confirmer?.open(
      (p) => this.onVerdict(p),
      (message) => this.onFailed(message),
    );
    this.mode = !this.silero ? 'webrtc' : this.webrtc ? 'hybrid' : 'silero';
    if (!this.webrtc && !this.silero) throw new Error('a segmenter needs WebRTC VAD, a Silero confirmer, or both');
    this.threshold = judges.threshold;
    this.emit = emit;
    this.utterance = new Utterance(settings);
    if (this.silero) this.pending = new PendingFrames(16);
  }

  get speaking(): boolean {
    return this.utterance.speaking;
  }

  get streamMs(): number {
    return this.arrived * FRAME_MS + this.frameFill / SAMPLES_PER_MS;
  }

  /** No verdict is on its way: every frame received is judged, but those waiting for a chunk more audio will complete. */
  get settled(): boolean {
    return this.sentCount === 0;
  }

  /** Runs `done` once every verdict asked for so far is back (at once if none is out, or Silero failed): a file is fed a block at a time. */
  settle(done: () => void): void {
    if (this.sentCount === 0 || this.failed) done();
    else this.settleDone.push(done);
  }

  push(samples: Pcm16k): void {
    if (this.failed) return;
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
    if (this.failed) {
      done?.();
      return false;
    }
    if (done) this.flushDone.push(done);
    if (this.sentCount === 0) {
      const speaking = this.flushNow();
      this.deliver();
      this.runFlushDone();
      return speaking;
    }
    this.flushAt = this.arrived;
    this.flushWaits = this.sentCount;
    return this.speaking || this.pending!.count > 0;
  }

  private runFlushDone(): void {
    for (const done of this.flushDone.splice(0)) done();
  }

  /** Judges what is left before the flush point (frames waiting on a chunk no audio will complete) and ends the utterance. */
  private flushNow(): boolean {
    while (this.pending && this.pending.count > 0 && this.utterance.judged < this.flushAt) this.judgePending();
    this.flushAt = Infinity;
    return this.utterance.commit(this.events);
  }

  close(): void {
    this.webrtc?.close();
    this.silero?.close();
  }

  /** A whole frame has arrived in `this.frame`. */
  private arrive(): void {
    const webrtcVoiced = this.webrtc ? this.webrtc.isSpeech(this.frame) : true;
    this.arrived++;
    const pending = this.pending;
    if (!pending) {
      this.judge(this.frame, 0, webrtcVoiced, false);
      return;
    }
    const episodeStart = !this.inEpisode && webrtcVoiced;
    if (episodeStart) this.startEpisode();
    // Hybrid judges a frame WebRTC calls unvoiced without Silero (only an onset asks Silero to agree),
    // so it waits for no verdict: the silence that ends a turn is not held up by a spot-check of it. A
    // voiced frame waits for every verdict asked before it (a window of only unvoiced frames holds
    // nothing back), so it is judged on the same verdicts at any speed.
    const heard = this.inEpisode ? this.listen(webrtcVoiced) : 0;
    const need = this.mode !== 'hybrid' ? heard : webrtcVoiced ? Math.max(heard, this.askedUntil) : 0;
    this.rememberRecent();
    if (pending.count === 0 && need === 0 && !episodeStart && this.flushAt === Infinity) {
      this.judge(this.frame, 0, webrtcVoiced, this.sileroSpeech);
      return;
    }
    if (pending.count === pending.capacity) {
      if (pending.count < MAX_PENDING_FRAMES) pending.grow(Math.min(MAX_PENDING_FRAMES, pending.count * 2));
      else this.judgePending();
    }
    pending.push(this.frame, webrtcVoiced, need);
    this.drain();
  }

  private startEpisode(): void {
    this.inEpisode = true;
    this.episodeChunk = 0;
    this.chunkFill = 0;
    this.unvoicedSamples = 0;
    const received = (this.arrived - 1) * FRAME_SAMPLES;
    // Warm-up: the chunk before the lead-in, with fresh recurrent state; its verdict judges no frame.
    this.warm = received >= CHUNK_SAMPLES + LEAD_IN && this.send(this.recent.subarray(0, CHUNK_SAMPLES), true, WARM_UP, this.purposeOf(0));
    if (received >= LEAD_IN) {
      this.chunk.set(this.recent.subarray(CHUNK_SAMPLES));
      this.chunkFill = LEAD_IN;
    }
  }

  /** Feeds this frame to the episode's chunks; returns the sample whose verdict the frame needs (0: none). */
  private listen(webrtcVoiced: boolean): number {
    this.unvoicedSamples = webrtcVoiced ? 0 : this.unvoicedSamples + FRAME_SAMPLES;
    const frameEnd = this.arrived * FRAME_SAMPLES;
    let offset = 0;
    let need = 0;
    while (offset < FRAME_SAMPLES) {
      const take = Math.min(CHUNK_SAMPLES - this.chunkFill, FRAME_SAMPLES - offset);
      // An element loop, not chunk.set(frame.subarray(...)): no view object per frame.
      for (let i = 0; i < take; i++) this.chunk[this.chunkFill + i] = this.frame[offset + i]!;
      this.chunkFill += take;
      offset += take;
      if (this.chunkFill < CHUNK_SAMPLES) break;
      this.chunkFill = 0;
      const end = frameEnd - FRAME_SAMPLES + offset;
      const k = this.episodeChunk++;
      const rest = this.restOfWindow(k);
      if (this.heard(k) && this.send(this.chunk, k === 0 && !this.warm, rest === 0 ? end : IN_WINDOW, this.purposeOf(k)) && offset === FRAME_SAMPLES) need = end + rest * CHUNK_SAMPLES;
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

  /** What the verdict on chunk `k` of an episode decides (how long it may wait to share a call). */
  private purposeOf(k: number): ChunkPurpose {
    return this.mode === 'silero' ? 'every-frame' : k < DENSE_CHUNKS ? 'onset' : 'spot-check';
  }

  /** Queues a chunk for Silero; false (nothing sent, no frame waits) if more are in flight than MAX_PENDING_FRAMES can wait on. */
  private send(chunk: Float32Array, reset: boolean, end: number, purpose: ChunkPurpose): boolean {
    if (this.sentCount === this.sent.length) return false;
    this.sent[(this.sentHead + this.sentCount) % this.sent.length] = end;
    this.sentCount++;
    if (end >= 0) this.askedUntil = end;
    this.silero!.push(chunk, reset, purpose);
    return true;
  }

  private rememberRecent(): void {
    this.recent.copyWithin(0, FRAME_SAMPLES);
    this.recent.set(this.frame, this.recent.length - FRAME_SAMPLES);
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
    if (this.sentCount === 0) for (const done of this.settleDone.splice(0)) done();
  }

  private onFailed(message: string): void {
    this.failed = true;
    this.flushDone.length = 0;
    this.emit({ type: 'failed', message });
    for (const done of this.settleDone.splice(0)) done();
  }

  /** Judges pending frames, oldest first, as far as verdicts have come back. */
  private drain(): void {
    const pending = this.pending!;
    while (pending.count > 0 && this.utterance.judged < this.flushAt && pending.headNeed <= this.heardUntil) this.judgePending();
    if (this.flushAt !== Infinity && this.flushWaits === 0) {
      this.flushNow();
      this.drain();
    }
  }

  private judgePending(): void {
    const pending = this.pending!;
    const voiced = pending.headVoiced;
    const from = pending.shift();
    this.judge(pending.audio, from, voiced, this.sileroSpeech);
  }

  private deliver(): void {
    if (this.events.length === 0) return;
    for (const event of this.events) this.emit(event);
    this.events.length = 0;
  }

  /** One frame (`samples` from `from` on), in stream order, with what WebRTC VAD and Silero's latest verdict say of it. */
  private judge(samples: Float32Array, from: number, webrtcVoiced: boolean, sileroSpeech: boolean): void {
    const voiced = this.mode === 'webrtc' ? webrtcVoiced : this.mode === 'silero' ? sileroSpeech : webrtcVoiced && sileroSpeech;
    // Hybrid starts on WebRTC's call so atMs is its onset; Silero must agree before the start is announced.
    const onset = this.mode === 'hybrid' ? webrtcVoiced : voiced;
    this.utterance.frame(samples, from, onset, voiced, sileroSpeech || this.mode !== 'hybrid', this.events);
  }
}

/** Segmenter.flush, its answer also handed to `done` once everything before the flush is judged (flush may run its callback before it returns). */
export function flushSegmenter(segmenter: Segmenter, done: (committed: boolean) => void): boolean {
  let committed: boolean | undefined;
  let judged = false;
  committed = segmenter.flush(() => (committed === undefined ? (judged = true) : done(committed)));
  if (judged) done(committed);
  return committed;
}
