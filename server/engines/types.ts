import type { EarshotError } from '../../protocol/errors.js';
import type { FinishReason, Usage } from '../../protocol/native.js';
import { SAMPLE_RATE, type Pcm16k } from '../audio/format.js';

export type Part =
  | { type: 'text'; text: string }
  | { type: 'audio'; samples: Pcm16k }
  | { type: 'image'; bytes: Uint8Array; mime: string };

export interface Message {
  role: 'system' | 'user' | 'assistant';
  parts: Part[];
  /** What was said in this message's audio, once transcribed: later turns' history carries it instead of a note. */
  transcript?: string;
}

export interface TurnParams {
  maxTokens: number;
  temperature: number;
  topP?: number;
  stop?: string[];
  seed?: number;
}

/**
 * What a turn asks of the engine. `reply` (the default) answers the conversation in `messages`.
 * `transcribe` writes down the speech of the last message's audio, verbatim: `messages` is then
 * that one user message, and each engine picks its own way (a transcription prompt, an
 * upstream transcription endpoint, the echo engine's labelled test transcript).
 */
export type TurnKind = 'reply' | 'transcribe';

/** Optional help for a transcription, as OpenAI's transcription requests carry it. */
export interface TranscriptionHints {
  /** ISO-639-1 code such as `en`. */
  language?: string;
  /** Earlier speech or spellings of names the speaker may use. */
  prompt?: string;
}

/** The front door a turn came through (for logs). */
export type Door = 'native' | 'realtime' | 'rest';

export interface TurnRequest {
  id: string;
  sessionId: string;
  /** Where the turn came from, for its log line; engines ignore it. */
  door?: Door;
  /** Absent: 'reply'. */
  kind?: TurnKind;
  /** Only for kind 'transcribe'. */
  hints?: TranscriptionHints;
  /** Full history for this turn, system message first, the new user message last. */
  messages: Message[];
  params: TurnParams;
  /** Aborted by barge-in, `cancel`, a closed socket or a REST client that went away. */
  signal: AbortSignal;
  /** performance.now() when the turn became ready (end of speech, request arrival): latency is measured from here. */
  readyAt: number;
  /** User messages the session's history cap dropped from `messages` (absent: none); with those in `messages` they number the turn. */
  droppedUserTurns?: number;
}

export type TurnEvent =
  | { type: 'delta'; text: string }
  | { type: 'done'; usage: Usage; finish: Exclude<FinishReason, 'error'> }
  | { type: 'error'; error: EarshotError };

export interface ModelInfo {
  id: string;
  ownedBy: string;
  /** True for engines that are not a model (the echo engine): clients must say so. */
  testEngine: boolean;
  inputs: { audio: boolean; image: boolean };
  /** Longest audio clip the model accepts, in ms. */
  maxAudioMs: number;
}

/** How far an engine that cannot take turns yet got with loading its model. */
export interface EngineLoading {
  stage: 'starting' | 'download' | 'load';
  percent?: number;
  doneBytes?: number;
  totalBytes?: number;
}

export interface Engine {
  readonly name: string;
  /** Engines that load a model after the server started: resolves once it can take turns, rejects when it never will. */
  readonly ready?: Promise<void>;
  /** While loading: progress for /health and the log; undefined once ready. */
  loading?(): EngineLoading | undefined;
  /** Engines with a backend that can go away (an upstream): why it cannot answer now, for /health; undefined when it can. */
  degraded?(): string | undefined;
  /** Sequences the engine can run at once; the scheduler never exceeds it. May change once the engine is ready. */
  capacity(): number;
  models(): ModelInfo[];
  /**
   * Runs a batch; emits events per turn id and resolves once every turn got `done` or `error`.
   * Must honour each turn's AbortSignal by finishing that turn with `done {finish: 'cancelled'}`.
   */
  run(batch: TurnRequest[], emit: (turnId: string, event: TurnEvent) => void): Promise<void>;
  /** Engines whose capacity can grow on its own (a restarted worker) call this, or queued turns would wait for the next submit. */
  onCapacity?(listener: () => void): void;
  close(): Promise<void>;
}

/** Milliseconds of audio in `parts`. */
export function audioMsOf(parts: Part[]): number {
  let samples = 0;
  for (const part of parts) if (part.type === 'audio') samples += part.samples.length;
  return Math.round((samples * 1000) / SAMPLE_RATE);
}
