/**
 * Streaming polyphase resampler: a Kaiser-windowed sinc evaluated at the L phases of the
 * rational ratio out/in = L/M, so every output sample is a dot product with a precomputed
 * table row. Zero-phase (no group delay), so stream timestamps survive resampling; it
 * holds back `halfTaps` input samples until more input (or `flush`) arrives.
 * Per-call work reuses the history and output buffers (they grow only when a larger chunk
 * than ever before arrives), which keeps the per-frame path allocation-free.
 */
const KAISER_BETA = 8.6;
const ZERO_CROSSINGS = 12;
const PASSBAND = 0.92;

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  for (let k = 1; k < 40; k++) {
    term *= (x / (2 * k)) * (x / (2 * k));
    sum += term;
    if (term < 1e-12 * sum) break;
  }
  return sum;
}

export class Resampler {
  readonly fromRate: number;
  readonly toRate: number;
  private readonly up: number;
  private readonly down: number;
  private readonly halfTaps: number;
  private readonly taps: number;
  private readonly table: Float32Array;
  private history: Float32Array;
  private historyLength: number;
  /** Index in `history` of the input sample at or just before the next output instant. */
  private base: number;
  /** Phase of the next output instant, in units of 1/up input samples. */
  private phase = 0;
  private out: Float32Array = new Float32Array(0);

  constructor(fromRate: number, toRate: number) {
    if (!(fromRate > 0 && toRate > 0)) throw new RangeError('sample rates must be positive');
    this.fromRate = fromRate;
    this.toRate = toRate;
    const divisor = gcd(fromRate, toRate);
    this.up = toRate / divisor;
    this.down = fromRate / divisor;
    const cutoff = Math.min(1, toRate / fromRate) * PASSBAND;
    this.halfTaps = Math.ceil(ZERO_CROSSINGS / cutoff);
    this.taps = 2 * this.halfTaps;
    this.table = new Float32Array(this.up * this.taps);
    const reach = this.halfTaps;
    for (let p = 0; p < this.up; p++) {
      const frac = p / this.up;
      let sum = 0;
      for (let k = 0; k < this.taps; k++) {
        const tau = frac - (k - this.halfTaps + 1);
        const x = tau / reach;
        const window = Math.abs(x) >= 1 ? 0 : besselI0(KAISER_BETA * Math.sqrt(1 - x * x)) / besselI0(KAISER_BETA);
        const arg = Math.PI * cutoff * tau;
        const sinc = arg === 0 ? 1 : Math.sin(arg) / arg;
        const value = cutoff * sinc * window;
        this.table[p * this.taps + k] = value;
        sum += value;
      }
      // Normalise each phase to unity DC gain so a constant signal stays constant.
      for (let k = 0; k < this.taps; k++) this.table[p * this.taps + k]! /= sum;
    }
    this.history = new Float32Array(4096 + this.taps);
    this.historyLength = this.halfTaps - 1;
    this.base = this.halfTaps - 1;
  }

  /** Resamples the next chunk; the returned view is valid until the next call. */
  process(input: Float32Array): Float32Array {
    if (this.up === this.down) return input;
    this.append(input);
    return this.drain(Number.POSITIVE_INFINITY);
  }

  /** Emits what the held-back tail yields, padding with silence; the resampler can be reused after. */
  flush(): Float32Array {
    if (this.up === this.down) return new Float32Array(0);
    const inputEnd = this.historyLength;
    this.append(new Float32Array(this.halfTaps));
    const out = this.drain(inputEnd).slice();
    this.historyLength = this.halfTaps - 1;
    this.history.fill(0, 0, this.historyLength);
    this.base = this.halfTaps - 1;
    this.phase = 0;
    return out;
  }

  private append(input: Float32Array): void {
    const needed = this.historyLength + input.length;
    if (needed > this.history.length) {
      const grown = new Float32Array(Math.max(needed, this.history.length * 2));
      grown.set(this.history.subarray(0, this.historyLength));
      this.history = grown;
    }
    this.history.set(input, this.historyLength);
    this.historyLength = needed;
  }

  /** Computes the outputs the buffered input fully covers, for output instants before `endBase`. */
  private drain(endBase: number): Float32Array {
    const { up, down, taps, table, history } = this;
    const maxOut = Math.ceil(((this.historyLength - this.base) * up) / down) + 1;
    if (this.out.length < maxOut) this.out = new Float32Array(maxOut * 2);
    const out = this.out;
    let count = 0;
    let base = this.base;
    let phase = this.phase;
    const lastStart = this.historyLength - taps;
    while (base - this.halfTaps + 1 <= lastStart && base < endBase) {
      const start = base - this.halfTaps + 1;
      const row = phase * taps;
      let acc = 0;
      for (let k = 0; k < taps; k++) acc += table[row + k]! * history[start + k]!;
      out[count++] = acc;
      phase += down;
      base += Math.floor(phase / up);
      phase %= up;
    }
    // Keep only what future outputs can still reach.
    const keepFrom = Math.max(0, Math.min(base - this.halfTaps + 1, this.historyLength));
    if (keepFrom > 0) {
      history.copyWithin(0, keepFrom, this.historyLength);
      this.historyLength -= keepFrom;
      base -= keepFrom;
    }
    this.base = base;
    this.phase = phase;
    return out.subarray(0, count);
  }
}

/** One-shot resampling of a whole clip (REST uploads, fixtures). */
export function resample(samples: Float32Array, fromRate: number, toRate: number): Float32Array {
  if (fromRate === toRate) return samples;
  const resampler = new Resampler(fromRate, toRate);
  const head = resampler.process(samples).slice();
  const tail = resampler.flush();
  const out = new Float32Array(head.length + tail.length);
  out.set(head);
  out.set(tail, head.length);
  return out;
}
