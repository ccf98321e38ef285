/**
 * Transcripts of the user's words: a user item's audio becomes a `transcribe` turn beside the
 * reply (same scheduler, batched with it). Transcriptions outlive barge-in and end only with
 * their item or the session; a failure is reported and the conversation goes on.
 */
import { EarshotError } from '../../protocol/errors.js';
import type { Usage } from '../../protocol/native.js';
import type { Door, TranscriptionHints, TurnRequest } from '../engines/types.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { HistoryItem } from './types.js';

/** A user item's transcription: its text as it comes, then the whole text, or why it failed. */
export type TranscriptEvent = { type: 'delta'; text: string } | { type: 'completed'; text: string; usage: Usage } | { type: 'failed'; error: EarshotError };

export class Transcriber {
  private readonly sessionId: string;
  private readonly deps: { scheduler: Scheduler; door: Door };
  private readonly emit: (itemId: string, event: TranscriptEvent) => void;
  /** Transcriptions in flight by item id. */
  private readonly inFlight = new Map<string, AbortController>();
  private closed = false;

  constructor(sessionId: string, deps: { scheduler: Scheduler; door: Door }, emit: (itemId: string, event: TranscriptEvent) => void) {
    this.sessionId = sessionId;
    this.deps = deps;
    this.emit = emit;
  }

  /** Writes down what the user said in `item`'s audio (items without audio are skipped); sets `item.transcript` when done. */
  transcribe(item: HistoryItem, hints: TranscriptionHints, maxTokens: number): void {
    const audio = item.parts.filter((p) => p.type === 'audio');
    if (audio.length === 0 || this.closed) return;
    const emit = (event: TranscriptEvent) => this.emit(item.id, event);
    const controller = new AbortController();
    this.inFlight.set(item.id, controller);
    let text = '';
    const turn: TurnRequest = {
      id: `${item.id}_transcript`,
      sessionId: this.sessionId,
      door: this.deps.door,
      kind: 'transcribe',
      hints,
      messages: [{ role: 'user', parts: audio }],
      params: { maxTokens, temperature: 0 },
      signal: controller.signal,
      readyAt: performance.now(),
    };
    const end = (event: TranscriptEvent) => {
      this.inFlight.delete(item.id);
      if (!this.closed && !controller.signal.aborted) emit(event);
    };
    try {
      this.deps.scheduler.submit(turn, (event) => {
        if (event.type === 'delta') {
          text += event.text;
          if (!controller.signal.aborted) emit({ type: 'delta', text: event.text });
        } else if (event.type === 'error') end({ type: 'failed', error: event.error });
        else if (event.finish === 'cancelled') end({ type: 'failed', error: new EarshotError('shutting_down', 'the transcription was cancelled by the server', { retryable: true }) });
        else {
          item.transcript = text.trim();
          end({ type: 'completed', text: item.transcript, usage: event.usage });
        }
      });
    } catch (err) {
      end({ type: 'failed', error: EarshotError.from(err) });
    }
  }

  /** The item is gone: its transcription stops without a word. */
  cancel(itemId: string): void {
    this.inFlight.get(itemId)?.abort();
  }

  close(): void {
    this.closed = true;
    for (const controller of this.inFlight.values()) controller.abort();
  }
}
