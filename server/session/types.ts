/**
 * What a session and its front door say to each other: the history items, the settings and
 * dependencies a door builds a session with, and the events the session sends back.
 */
import type { EarshotError } from '../../protocol/errors.js';
import type { FinishReason, Usage } from '../../protocol/native.js';
import type { Pcm16k } from '../audio/format.js';
import type { Door, Message, TranscriptionHints, TurnParams } from '../engines/types.js';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { Pcm24k, SpokenReply } from '../voice/types.js';
import type { TranscriptEvent } from './transcriber.js';

export interface HistoryItem extends Message {
  id: string;
  /** What the user said in this item's audio, once its transcription completed. */
  transcript?: string;
  /** Set on assistant items whose reply was cut short. */
  interrupted?: boolean;
  /** The turn that produced an assistant item. */
  turnId?: string;
  /** A spoken reply: the text sent to synthesis with where its audio starts, and the audio's length. */
  speech?: { chunks: ReadonlyArray<{ text: string; startSample: number }>; samples: number };
}

/** Starts speaking one reply at `speed` (1 = the voice's own rate); the speech stops when `signal` aborts. */
export type SpeakReply = (voice: string, signal: AbortSignal, speed: number) => SpokenReply;

export interface TurnInfo {
  turnId: string;
  source: 'audio' | 'text';
  audioMs: number;
  startMs?: number;
  endMs?: number;
  text?: string;
  /** History item that holds the user's side of this turn. */
  itemId: string;
}

export type TurnResult = { type: 'done'; usage: Usage; finish: Exclude<FinishReason, 'error'>; text: string } | { type: 'error'; error: EarshotError; text: string };

export interface SessionEvents {
  speechStarted(atMs: number): void;
  speechStopped(atMs: number, startMs: number, endMs: number): void;
  turnStarted(turn: TurnInfo): void;
  delta(turnId: string, text: string): void;
  /** A chunk of the turn's spoken reply (24 kHz); the turn ends only after its last chunk. */
  audio?(turnId: string, pcm: Pcm24k): void;
  /** The voice stage failed for this turn: the text stands, the rest of the reply is not spoken. */
  voiceFailed?(turnId: string, error: EarshotError): void;
  turnEnded(turnId: string, result: TurnResult): void;
  /** The scheduler refused the turn just announced by turnStarted (queue full, or another error before it ran). */
  busy(error: EarshotError, turnId: string): void;
  /**
   * With `autoRespond` off, an ended utterance is handed here instead of becoming a history
   * item by itself, so the front door can add it under the item id it already announced.
   */
  utterance?(audio: Pcm16k): void;
  /** Transcription of a user item's audio (settings.transcription on): deltas, then completed or failed. */
  transcript?(itemId: string, event: TranscriptEvent): void;
  /** Turn detection stopped for good (Silero inference failed): the door says so in its shape and closes the session. */
  inputFailed(error: EarshotError): void;
}

export interface SessionSettings {
  system?: string;
  params: TurnParams;
  bargeIn: boolean;
  /** Utterances start a turn by themselves (false: the front door calls respond()). */
  autoRespond: boolean;
  coalesce: boolean;
  maxHistoryTurns: number;
  maxHistoryAudioMs: number;
  /** The voice replies are spoken with; undefined = text only. */
  voice?: string | undefined;
  /** Speaking rate of the voice (1 = its own; Realtime's audio.output.speed). */
  speed?: number;
  /** Set: every user audio item is also transcribed (a `transcribe` turn beside the reply). */
  transcription?: TranscriptionHints;
}

export interface SessionDeps {
  scheduler: Scheduler;
  metrics: Metrics;
  logger: Logger;
  /** The front door that owns the session (for the per-turn log line). */
  door: Door;
  /** The voice stage, when the server has a TTS engine. */
  speak?: SpeakReply | undefined;
}
