/**
 * Reads replies aloud with the browser's speech synthesis, a sentence at a time as the text
 * streams in, so speaking starts long before the reply is complete.
 */
const SENTENCE_END = /[.!?…](?=\s)/;

export class Speaker {
  constructor() {
    this.available = typeof speechSynthesis !== 'undefined';
    this.enabled = false;
    this.pending = new Map(); // turnId → text not spoken yet
  }

  get speaking() {
    return this.available && (speechSynthesis.speaking || speechSynthesis.pending);
  }

  feed(turnId, text) {
    if (!this.enabled) return;
    let rest = (this.pending.get(turnId) ?? '') + text;
    for (let match = SENTENCE_END.exec(rest); match; match = SENTENCE_END.exec(rest)) {
      this.say(rest.slice(0, match.index + 1));
      rest = rest.slice(match.index + 1);
    }
    this.pending.set(turnId, rest);
  }

  /** The reply ended: say what is left, unless it was cut off. */
  finish(turnId, finish) {
    const rest = this.pending.get(turnId);
    this.pending.delete(turnId);
    if (this.enabled && rest && finish === 'stop') this.say(rest);
  }

  stop() {
    this.pending.clear();
    if (this.available) speechSynthesis.cancel();
  }

  say(text) {
    if (!this.available || !text.trim()) return;
    speechSynthesis.speak(new SpeechSynthesisUtterance(text.trim()));
  }
}
