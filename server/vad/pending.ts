/**
 * Frames waiting for Silero's verdict, in arrival order: each frame's audio, WebRTC VAD's call on
 * it and the stream sample whose verdict it needs. A ring grown by doubling only as far as the
 * input runs ahead of Silero; each slot's view is made when the ring grows, so taking a frame
 * out makes no object.
 */
import { FRAME_SAMPLES } from './utterance.js';

export class PendingFrames {
  private slots: Float32Array[] = [];
  private voicedAt = new Uint8Array(0);
  private needAt = new Float64Array(0);
  private head = 0;
  count = 0;

  constructor(capacity: number) {
    this.grow(capacity);
  }

  get capacity(): number {
    return this.slots.length;
  }

  /** The sample whose verdict the oldest frame needs (count > 0). */
  get headNeed(): number {
    return this.needAt[this.head]!;
  }

  /** Appends a frame (copied); the caller keeps count below capacity, growing first. */
  push(frame: Float32Array, voiced: boolean, need: number): void {
    const slot = (this.head + this.count) % this.slots.length;
    this.slots[slot]!.set(frame);
    this.voicedAt[slot] = voiced ? 1 : 0;
    this.needAt[slot] = need;
    this.count++;
  }

  /** WebRTC VAD's call on the oldest frame (count > 0). */
  get headVoiced(): boolean {
    return this.voicedAt[this.head] === 1;
  }

  /** Removes the oldest frame and returns its audio: a view valid until the next push. */
  shift(): Float32Array {
    const slot = this.head;
    this.head = (slot + 1) % this.slots.length;
    this.count--;
    return this.slots[slot]!;
  }

  /** Frames keep their order; the head moves to slot 0. */
  grow(capacity: number): void {
    const audio = new Float32Array(capacity * FRAME_SAMPLES);
    const voicedAt = new Uint8Array(capacity);
    const needAt = new Float64Array(capacity);
    for (let i = 0; i < this.count; i++) {
      const from = (this.head + i) % this.slots.length;
      audio.set(this.slots[from]!, i * FRAME_SAMPLES);
      voicedAt[i] = this.voicedAt[from]!;
      needAt[i] = this.needAt[from]!;
    }
    this.slots = Array.from({ length: capacity }, (_, i) => audio.subarray(i * FRAME_SAMPLES, (i + 1) * FRAME_SAMPLES));
    this.voicedAt = voicedAt;
    this.needAt = needAt;
    this.head = 0;
  }
}
