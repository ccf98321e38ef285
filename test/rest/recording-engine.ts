/** Wraps an engine to record what the scheduler handed it: batches, each turn's events, and aborts. */
import { EarshotError } from '../../protocol/errors.js';
import { EchoEngine } from '../../server/engines/echo/engine.js';
import type { Engine, ModelInfo, TurnEvent, TurnRequest } from '../../server/engines/types.js';

export class RecordingEngine implements Engine {
  readonly name = 'recording';
  readonly batches: TurnRequest[][] = [];
  readonly events = new Map<string, TurnEvent[]>();
  private readonly inner: Engine;

  constructor(inner: Engine = new EchoEngine({ tokenDelayMs: 2, capacity: 64 })) {
    this.inner = inner;
  }

  capacity(): number {
    return this.inner.capacity();
  }

  models(): ModelInfo[] {
    return this.inner.models();
  }

  run(batch: TurnRequest[], emit: (turnId: string, event: TurnEvent) => void): Promise<void> {
    this.batches.push(batch);
    for (const turn of batch) this.events.set(turn.id, []);
    return this.inner.run(batch, (turnId, event) => {
      this.events.get(turnId)?.push(event);
      emit(turnId, event);
    });
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  get turns(): TurnRequest[] {
    return this.batches.flat();
  }

  /** Resolves once `predicate` holds, polling; rejects after `timeoutMs`. */
  async until(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error('condition not reached');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/** Echo for replies; every transcription fails as an engine error would. */
export class DeafTranscriber extends RecordingEngine {
  override run(batch: TurnRequest[], emit: (turnId: string, event: TurnEvent) => void): Promise<void> {
    for (const turn of batch.filter((turn) => turn.kind === 'transcribe'))
      emit(turn.id, { type: 'error', error: new EarshotError('engine_error', 'the speech model is down') });
    return super.run(
      batch.filter((turn) => turn.kind !== 'transcribe'),
      emit,
    );
  }
}
