/**
 * Any OpenAI-compatible `/v1/audio/speech` upstream (OpenAI, Kokoro-FastAPI, speaches) as a TTS
 * engine: neural voices and scale-out. Each sentence is one request for `response_format:
 * pcm` (raw 24 kHz 16-bit mono, as OpenAI defines it); the response body is read as it
 * arrives and handed on chunk by chunk, so the first audio does not wait for the whole
 * sentence. A request that fails or an upstream that is down is a voice_error naming the
 * upstream; cancelling a reply aborts its request.
 */
import { EarshotError } from '../../protocol/errors.js';
import { Slots } from './slots.js';
import { OPENAI_VOICES } from './voices.js';
import type { Pcm24k, SpeakOptions, Tts, VoiceInfo } from './types.js';

export interface OpenAiSpeechOptions {
  /** Base URL, e.g. http://10.0.0.5:8880/v1 */
  url: string;
  model: string;
  key: string | undefined;
  /** Voice names the upstream offers; empty = OpenAI's. */
  voices: string[];
  /** Requests at once. */
  parallel: number;
  maxQueue: number;
  /** Time to response headers and between body chunks. */
  timeoutMs: number;
}

export class OpenAiSpeechTts implements Tts {
  readonly name = 'openai';
  private readonly options: OpenAiSpeechOptions;
  private readonly endpoint: string;
  private readonly host: string;
  private readonly voiceList: VoiceInfo[];
  private readonly slots: Slots;

  constructor(options: OpenAiSpeechOptions) {
    this.options = options;
    this.endpoint = `${options.url.replace(/\/+$/, '')}/audio/speech`;
    this.host = new URL(options.url).host;
    const names = options.voices.length > 0 ? options.voices : Object.keys(OPENAI_VOICES);
    this.voiceList = names.map((id) => ({ id, ...(OPENAI_VOICES[id] ? { gender: OPENAI_VOICES[id] } : {}) }));
    this.slots = new Slots('openai', options.parallel, options.maxQueue);
  }

  voices(): VoiceInfo[] {
    return this.voiceList;
  }

  async *speak(text: string, voice: string, signal: AbortSignal, options: SpeakOptions = {}): AsyncIterable<Pcm24k> {
    const release = await this.slots.acquire(signal, options.first === true);
    if (!release) return;
    const timeout = new AbortController();
    let timer = setTimeout(() => timeout.abort(), this.options.timeoutMs);
    const restartTimer = () => {
      clearTimeout(timer);
      timer = setTimeout(() => timeout.abort(), this.options.timeoutMs);
    };
    try {
      const response = await fetch(this.endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(this.options.key ? { authorization: `Bearer ${this.options.key}` } : {}) },
        body: JSON.stringify({ model: this.options.model, input: text, voice, response_format: 'pcm', ...(options.speed && options.speed !== 1 ? { speed: options.speed } : {}) }),
        signal: AbortSignal.any([signal, timeout.signal]),
      }).catch((err: unknown) => this.fail(err, signal, timeout.signal));
      if (!response) return;
      if (!response.ok || !response.body) {
        const detail = (await response.text().catch(() => '')).slice(0, 300);
        throw new EarshotError('voice_error', `voice stage (openai): upstream "${this.host}" answered ${response.status}${detail ? `: ${detail}` : ''}`);
      }
      let carry: number | undefined;
      const reader = response.body.getReader();
      for (;;) {
        const next = await reader.read().catch((err: unknown) => this.fail(err, signal, timeout.signal));
        if (!next || next.done) return;
        restartTimer();
        const bytes = next.value;
        // A chunk may end in the middle of a sample: carry its odd byte to the next.
        let joined = bytes;
        if (carry !== undefined) {
          joined = new Uint8Array(bytes.length + 1);
          joined[0] = carry;
          joined.set(bytes, 1);
        }
        const usable = joined.length & ~1;
        carry = usable < joined.length ? joined[usable] : undefined;
        if (usable === 0) continue;
        const pcm = new Int16Array(usable / 2);
        new Uint8Array(pcm.buffer).set(joined.subarray(0, usable));
        yield pcm;
      }
    } finally {
      clearTimeout(timer);
      release();
    }
  }

  async close(): Promise<void> {}

  /** A cancelled reply ends quietly (undefined); a timeout or network failure is a voice_error. */
  private fail(err: unknown, signal: AbortSignal, timeout: AbortSignal): undefined {
    if (signal.aborted) return undefined;
    if (timeout.aborted) throw new EarshotError('voice_error', `voice stage (openai): upstream "${this.host}" did not answer within ${this.options.timeoutMs} ms`);
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new EarshotError('voice_error', `voice stage (openai): upstream "${this.host}" is unreachable (${cause})`);
  }
}
