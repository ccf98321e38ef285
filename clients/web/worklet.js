/**
 * Microphone capture on the audio thread: downmix to mono, resample from the context's rate
 * to the rate the encoder or the server wants, and post 20 ms frames to the page.
 * Downsampling low-passes first (windowed sinc) so speech above the new Nyquist does not alias.
 */
const FRAMES_PER_SECOND = 50;

function lowPass(ratio) {
  const half = Math.ceil(4 * ratio);
  const cutoff = 0.45 / ratio; // of the source rate; a little under the target Nyquist
  const taps = new Float32Array(2 * half + 1);
  let sum = 0;
  for (let i = 0; i < taps.length; i++) {
    const x = i - half;
    const sinc = x === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * x) / (Math.PI * x);
    const blackman = 0.42 - 0.5 * Math.cos((2 * Math.PI * i) / (taps.length - 1)) + 0.08 * Math.cos((4 * Math.PI * i) / (taps.length - 1));
    taps[i] = sinc * blackman;
    sum += taps[i];
  }
  for (let i = 0; i < taps.length; i++) taps[i] /= sum;
  return taps;
}

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const targetRate = options.processorOptions.targetRate;
    this.ratio = sampleRate / targetRate; // `sampleRate` is the context's, a worklet global
    this.frameSize = targetRate / FRAMES_PER_SECOND;
    this.frame = new Float32Array(this.frameSize);
    this.filled = 0;
    this.taps = this.ratio > 1 ? lowPass(this.ratio) : null;
    this.history = this.taps ? new Float32Array(this.taps.length) : null;
    this.at = 0;
    this.prev = 0;
    this.t = 1; // position of the next output sample between `prev` (0) and the current input (1)
  }

  emit(sample) {
    this.frame[this.filled++] = sample;
    if (this.filled === this.frameSize) {
      this.port.postMessage(this.frame, [this.frame.buffer]);
      this.frame = new Float32Array(this.frameSize);
      this.filled = 0;
    }
  }

  filter(sample) {
    const { taps, history } = this;
    history[this.at] = sample;
    let acc = 0;
    let j = this.at;
    for (let k = 0; k < taps.length; k++) {
      acc += taps[k] * history[j];
      j = j === 0 ? history.length - 1 : j - 1;
    }
    this.at = this.at === history.length - 1 ? 0 : this.at + 1;
    return acc;
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    const n = channels[0].length;
    const scale = 1 / channels.length;
    for (let i = 0; i < n; i++) {
      let mono = 0;
      for (let c = 0; c < channels.length; c++) mono += channels[c][i];
      mono *= scale;
      if (this.ratio === 1) {
        this.emit(mono);
        continue;
      }
      const cur = this.taps ? this.filter(mono) : mono;
      while (this.t <= 1) {
        this.emit(this.prev + (cur - this.prev) * this.t);
        this.t += this.ratio;
      }
      this.t -= 1;
      this.prev = cur;
    }
    return true;
  }
}

registerProcessor('earshot-capture', CaptureProcessor);
