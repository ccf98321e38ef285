/**
 * Plays the server's voice: PCM16 frames of each reply scheduled back to back on one Web Audio
 * clock, so chunks join without gaps however they arrive (the server sends faster than real
 * time). `stop()` silences everything at once and says how much of the reply was heard, which
 * the page sends to the server (`truncate`) so the conversation holds only what the user heard.
 */
/** Scheduling a little ahead of "now" absorbs the main thread's jitter. */
const LEAD_S = 0.05;

export class VoicePlayer {
  /** onSpeaking(boolean): the player started or finished playing. */
  constructor({ onSpeaking }) {
    this.onSpeaking = onSpeaking;
    this.context = undefined;
    this.sources = new Set();
    this.endTime = 0;
    /**
     * The reply being played: its turn, the ms scheduled so far, and whether the server ended it.
     * It outlives gaps (synthesis slower than playback) until its turn is done and played out.
     */
    this.current = undefined;
    this.speaking = false;
    this.timer = undefined;
    /** Loudest sample seen at the output, for tests that check sound comes out. */
    this.peak = 0;
  }

  /** Browsers only start audio after a user gesture: the page calls this from one (and on every gesture, harmlessly). */
  unlock() {
    if (!this.context) {
      this.context = new AudioContext();
      this.analyser = this.context.createAnalyser();
      this.analyser.connect(this.context.destination);
      this.probe = new Float32Array(this.analyser.fftSize);
    }
    if (this.context.state === 'suspended') this.context.resume();
  }

  /** One frame of turn `turnId`: PCM16 little-endian mono at `sampleRate`. */
  play(turnId, bytes, sampleRate) {
    this.unlock();
    const { context } = this;
    const samples = new Int16Array(bytes.slice().buffer);
    if (samples.length === 0) return;
    const buffer = context.createBuffer(1, samples.length, sampleRate);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < samples.length; i++) channel[i] = samples[i] / 32768;
    const source = context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.analyser);
    const at = Math.max(this.endTime, context.currentTime + LEAD_S);
    if (this.current?.turnId !== turnId) this.current = { turnId, scheduledMs: 0, ended: false };
    source.start(at);
    source.onended = () => this.sources.delete(source);
    this.sources.add(source);
    this.endTime = at + buffer.duration;
    this.current.scheduledMs += buffer.duration * 1000;
    this.setSpeaking(true);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.finished(), (this.endTime - context.currentTime) * 1000 + 20);
  }

  /** The server ended turn `turnId` (`done`): once its audio has played, it is over. */
  turnEnded(turnId) {
    if (this.current?.turnId !== turnId) return;
    this.current.ended = true;
    if (!this.speaking) this.current = undefined;
  }

  /**
   * Silences the voice now. Returns `{turnId, playedMs}` for the reply being spoken (how much of
   * it the user heard: what was scheduled, less what had not played yet), or undefined.
   */
  stop() {
    if (!this.current) return undefined;
    const { turnId, scheduledMs } = this.current;
    const unplayedMs = Math.max(0, (this.endTime - this.context.currentTime) * 1000);
    const playedMs = Math.round(Math.max(0, scheduledMs - unplayedMs));
    for (const source of this.sources) source.stop();
    this.sources.clear();
    this.endTime = 0;
    this.current = undefined;
    clearTimeout(this.timer);
    this.setSpeaking(false);
    return { turnId, playedMs };
  }

  finished() {
    if (this.context.currentTime < this.endTime) {
      this.timer = setTimeout(() => this.finished(), (this.endTime - this.context.currentTime) * 1000 + 20);
      return;
    }
    if (this.current?.ended) this.current = undefined;
    this.setSpeaking(false);
  }

  setSpeaking(on) {
    if (on && !this.meter) this.meter = setInterval(() => this.measure(), 50);
    if (this.speaking === on) return;
    this.speaking = on;
    this.onSpeaking(on);
  }

  measure() {
    this.analyser.getFloatTimeDomainData(this.probe);
    for (const s of this.probe) this.peak = Math.max(this.peak, Math.abs(s));
    if (!this.speaking) {
      clearInterval(this.meter);
      this.meter = undefined;
    }
  }
}
