/**
 * Frames waiting for Silero's verdict, in arrival order: each frame's audio, WebRTC VAD's call on
 * it and the stream sample whose verdict it needs. A ring grown by doubling only as far as the
 * input runs ahead of Silero; a frame is handed out as an offset into `audio`, so neither taking
 * one out nor growing makes a view per frame.
 */
import { FRAME_SAMPLES } from './utterance.js';

export class PendingFrames {
  /** The frames' samples, FRAME_SAMPLES per slot; replaced when the ring grows. */
  audio = new Float32Array(0);
  private voicedAt = new Uint8Array(0);
  private needAt = new Float64Array(0);
  private head = 0;
  count = 0;

  constructor(capacity: number) {
    this.grow(capacity);
  }

  get capacity(): number {
    return this.voicedAt.length;
  }

  /** The sample whose verdict the oldest frame needs (count > 0). */
  get headNeed(): number {
    return this.needAt[this.head]!;
  }

  /** WebRTC VAD's call on the oldest frame (count > 0). */
  get headVoiced(): boolean {
    return this.voicedAt[this.head] === 1;
  }

  /** Appends a frame (copied); the caller keeps count below capacity, growing first. */
  push(frame: Float32Array, voiced: boolean, need: number): void {
    const slot = (this.head + this.count) % this.capacity;
    this.audio.set(frame, slot * FRAME_SAMPLES);
    this.voicedAt[slot] = voiced ? 1 : 0;
    this.needAt[slot] = need;
    this.count++;
  }

  /** Removes the oldest frame; returns where its samples start in `audio` (valid until the next push). */
  shift(): number {
    const slot = this.head;
    this.head = (slot + 1) % this.capacity;
    this.count--;
    return slot * FRAME_SAMPLES;
  }

  /** Frames keep their order; the head moves to slot 0. */
  grow(capacity: number): void {
    const audio = new Float32Array(capacity * FRAME_SAMPLES);
    const voicedAt = new Uint8Array(capacity);
    const needAt = new Float64Array(capacity);
    for (let i = 0; i < this.count; i++) {
      const from = (this.head + i) % this.capacity;
      audio.set(this.audio.subarray(from * FRAME_SAMPLES, (from + 1) * FRAME_SAMPLES), i * FRAME_SAMPLES);
      voicedAt[i] = this.voicedAt[from]!;
      needAt[i] = this.needAt[from]!;
    }
    this.audio = audio;
    this.voicedAt = voicedAt;
    this.needAt = needAt;
    this.head = 0;
  }
}
