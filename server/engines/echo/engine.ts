/**
 * The echo TEST engine: not a model. It answers with facts about what it heard (audio
 * duration, RMS level, turn number), streamed word by word, so every part of the pipeline
 * can be exercised and checked without model weights. Asked to transcribe, it gives a
 * transcript labelled as a test, with the clip's duration and level instead of words.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { SAMPLE_RATE } from '../../audio/format.js';
import type { Engine, Message, ModelInfo, TurnEvent, TurnRequest } from '../types.js';

export const ECHO_MODEL_ID = 'earshot-echo-test-engine';
/** Audio tokens per second, as Gemma-4 counts them (40 ms per token): keeps usage figures comparable. */
const AUDIO_TOKENS_PER_SECOND = 25;

export interface EchoOptions {
  tokenDelayMs: number;
  capacity: number;
}

export interface HeardFacts {
  turn: number;
  audioMs: number;
  rms: number;
  text: string;
}

/** What the echo engine reports for the newest user message; the turn number counts the user messages a history cap dropped. */
export function heardFacts(messages: Message[], droppedUserTurns = 0): HeardFacts {
  const turn = droppedUserTurns + messages.filter((m) => m.role === 'user').length;
  const last = [...messages].reverse().find((m) => m.role === 'user');
  let samples = 0;
  let energy = 0;
  const texts: string[] = [];
  for (const part of last?.parts ?? []) {
    if (part.type === 'audio') {
      samples += part.samples.length;
      for (let i = 0; i < part.samples.length; i++) energy += part.samples[i]! * part.samples[i]!;
    } else if (part.type === 'text') texts.push(part.text);
  }
  return {
    turn,
    audioMs: Math.round((samples * 1000) / SAMPLE_RATE),
    rms: samples === 0 ? 0 : Math.sqrt(energy / samples),
    text: texts.join(' '),
  };
}

export function echoReply(facts: HeardFacts): string {
  const heard = facts.audioMs > 0 ? `heard ${facts.audioMs} ms of audio at rms ${facts.rms.toFixed(4)}` : 'heard no audio';
  const typed = facts.text ? ` and read "${facts.text.slice(0, 200)}"` : '';
  return `Echo test engine, turn ${facts.turn}: ${heard}${typed}.`;
}

/** The echo engine cannot recognise words: its transcript says what it heard, and that it is a test. */
export function echoTranscript(facts: HeardFacts): string {
  return `[echo test transcript: ${(facts.audioMs / 1000).toFixed(2)} s of audio at rms ${facts.rms.toFixed(4)}]`;
}

export class EchoEngine implements Engine {
  readonly name = 'echo';
  private readonly options: EchoOptions;

  constructor(options: EchoOptions) {
    this.options = options;
  }

  capacity(): number {
    return this.options.capacity;
  }

  models(): ModelInfo[] {
    return [{ id: ECHO_MODEL_ID, ownedBy: 'earshot (test engine, not a model)', testEngine: true, inputs: { audio: true, image: false }, maxAudioMs: 30_000 }];
  }

  async run(batch: TurnRequest[], emit: (turnId: string, event: TurnEvent) => void): Promise<void> {
    await Promise.all(batch.map((turn) => this.runTurn(turn, (event) => emit(turn.id, event))));
  }

  async close(): Promise<void> {}

  private async runTurn(turn: TurnRequest, emit: (event: TurnEvent) => void): Promise<void> {
    const facts = heardFacts(turn.messages, turn.droppedUserTurns);
    const words = (turn.kind === 'transcribe' ? echoTranscript(facts) : echoReply(facts)).split(/(?<= )/);
    const promptTokens =
      turn.messages.reduce((n, m) => n + m.parts.reduce((k, p) => k + (p.type === 'text' ? p.text.split(/\s+/).length : 0), 0), 0) +
      Math.ceil((facts.audioMs / 1000) * AUDIO_TOKENS_PER_SECOND);
    const audioTokens = Math.ceil((facts.audioMs / 1000) * AUDIO_TOKENS_PER_SECOND);
    let sent = 0;
    for (const word of words) {
      if (sent >= turn.params.maxTokens) break;
      if (this.options.tokenDelayMs > 0) await sleep(this.options.tokenDelayMs, undefined, { signal: turn.signal }).catch(() => undefined);
      if (turn.signal.aborted) break;
      emit({ type: 'delta', text: word });
      sent++;
    }
    const finish = turn.signal.aborted ? 'cancelled' : sent < words.length ? 'length' : 'stop';
    emit({ type: 'done', usage: { promptTokens, completionTokens: sent, audioTokens }, finish });
  }
}
