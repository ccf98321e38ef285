import type { FinishReason, ServerMessage, Usage } from '../../protocol/native.js';
import { AsyncQueue } from './queue.js';

export type TurnInfo = Omit<Extract<ServerMessage, { type: 'turn' }>, 'type'>;

export interface TurnResult {
  turnId: string;
  /** The whole reply (what streamed before a cancel or an error included). */
  text: string;
  finish: FinishReason;
  usage?: Usage;
  /** Set when finish is 'error': the server's error, or `connection_lost` from the client. */
  error?: { code: string; message: string };
}

/** The user's words in a turn's audio; on failure `text` is empty and `error` says why. */
export interface TranscriptResult {
  text: string;
  error?: { code: string; message: string };
}

/** One reply: announced by the server's `turn`, streamed by `delta`s, ended by `done` or `error`. */
export class Turn {
  readonly turnId: string;
  readonly info: TurnInfo;
  /** The reply so far. */
  text = '';
  /** performance.now() when the `turn` message, the first `delta` and the first audio frame arrived. */
  readonly announcedAt = performance.now();
  firstDeltaAt: number | undefined;
  firstAudioAt: number | undefined;
  /** Bytes of spoken reply received (frames of the session's `ready.voice` codec). */
  audioBytes = 0;
  /** Settles once, when the turn ends; never rejects (errors are a `finish`). */
  readonly done: Promise<TurnResult>;
  /**
   * What the user said in this turn's audio, when the client asked for transcripts
   * (`transcribe`); undefined without them, for a turn without audio, or if the connection
   * ended first. It may settle after `done`.
   */
  readonly transcript: Promise<TranscriptResult | undefined>;
  private readonly queue = new AsyncQueue<string>();
  private deltasTaken = false;
  private readonly frames = new AsyncQueue<Uint8Array>();
  private audioTaken = false;
  private result: TurnResult | undefined;

  private constructor(info: TurnInfo, done: Promise<TurnResult>, transcript: Promise<TranscriptResult | undefined>) {
    this.turnId = info.turnId;
    this.info = info;
    this.done = done;
    this.transcript = transcript;
  }

  get finished(): boolean {
    return this.result !== undefined;
  }

  /** The reply's text pieces as they stream, from the first; one consumer per turn. */
  deltas(): AsyncIterableIterator<string> {
    if (this.deltasTaken) throw new Error(`deltas() of turn ${this.turnId} is already being read`);
    this.deltasTaken = true;
    return this.queue;
  }

  /**
   * The spoken reply's frames as they stream (20 ms Opus packets, or PCM16 little-endian at
   * `ready.voice.sampleRate`), from the first; ends with the turn. One consumer per turn.
   */
  audio(): AsyncIterableIterator<Uint8Array> {
    if (this.audioTaken) throw new Error(`audio() of turn ${this.turnId} is already being read`);
    this.audioTaken = true;
    return this.frames;
  }

  /** The client's handle: feeds the turn; kept out of the public API. */
  static create(info: TurnInfo): {
    turn: Turn;
    delta(text: string): void;
    audio(frame: Uint8Array): void;
    finish(result: Omit<TurnResult, 'turnId' | 'text'>): void;
    heard(result: TranscriptResult | undefined): void;
  } {
    let settle!: (result: TurnResult) => void;
    let heard!: (result: TranscriptResult | undefined) => void;
    const turn = new Turn(
      info,
      new Promise((resolve) => (settle = resolve)),
      new Promise((resolve) => (heard = resolve)),
    );
    return {
      turn,
      heard,
      delta(text) {
        if (turn.result) return;
        turn.firstDeltaAt ??= performance.now();
        turn.text += text;
        turn.queue.push(text);
      },
      audio(frame) {
        if (turn.result) return;
        turn.firstAudioAt ??= performance.now();
        turn.audioBytes += frame.length;
        turn.frames.push(frame);
      },
      finish(partial) {
        if (turn.result) return;
        turn.result = { turnId: turn.turnId, text: turn.text, ...partial };
        turn.queue.end();
        turn.frames.end();
        settle(turn.result);
      },
    };
  }
}
