/**
 * A simulated batched decoder, for measuring the scheduler's batching without a GPU.
 * Continuous batching as mlx-vlm's BatchGenerator does it: one decode loop; each step makes
 * one token for every running sequence; turns handed over join at the next step (their
 * prefill is paid in that step); finished or cancelled ones leave.
 *
 * Cost model (parameters in SIM_MODEL, from published figures for Gemma and mlx-lm):
 *   step time = fixedMs + perSeqMs × running + prefillMs × joining
 * Gemma-4 E4B 4-bit decodes 60-80 tok/s single-stream on M3 Max/Ultra: one sequence costs
 * fixedMs + perSeqMs = 14.3 ms (70 tok/s). Batched decoding in mlx-lm raises aggregate
 * throughput 4-6x at large batch: with fixedMs 12.2 and perSeqMs 2.1, batch 16 makes
 * 16 / 45.8 ms = 349 tok/s, 5.0x one stream (batch 8: 3.9x; batch 32: 5.8x).
 * prefillMs is our assumption, not a published figure: one short audio turn (about 3 s =
 * 75 audio tokens plus the text prompt) prefilled in 40 ms. Replies are 16-48 tokens (a
 * spoken answer of a sentence or two), fixed per turn id.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Engine, ModelInfo, TurnEvent, TurnRequest } from '../server/engines/types.js';

export const SIM_MODEL = { fixedMs: 12.2, perSeqMs: 2.1, prefillMs: 40, minReplyTokens: 16, maxReplyTokens: 48 } as const;

/** Reply length from the turn id (FNV-1a), so every run and every maxBatch sees the same replies. */
function replyTokens(turnId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < turnId.length; i++) h = Math.imul(h ^ turnId.charCodeAt(i), 0x01000193);
  return SIM_MODEL.minReplyTokens + ((h >>> 0) % (SIM_MODEL.maxReplyTokens - SIM_MODEL.minReplyTokens + 1));
}

interface Sequence {
  turn: TurnRequest;
  emit: (event: TurnEvent) => void;
  tokens: number;
  length: number;
  joined: boolean;
  finished: () => void;
}

export class SimEngine implements Engine {
  readonly name = 'sim';
  private readonly maxSequences: number;
  private readonly running: Sequence[] = [];
  private looping = false;

  constructor(maxSequences: number) {
    this.maxSequences = maxSequences;
  }

  capacity(): number {
    return this.maxSequences;
  }

  models(): ModelInfo[] {
    return [{ id: 'bench-sim', ownedBy: 'earshot bench (simulated engine)', testEngine: true, inputs: { audio: true, image: false }, maxAudioMs: 30_000 }];
  }

  run(batch: TurnRequest[], emit: (turnId: string, event: TurnEvent) => void): Promise<void> {
    const done = batch.map(
      (turn) =>
        new Promise<void>((finished) => {
          this.running.push({ turn, emit: (event) => emit(turn.id, event), tokens: 0, length: Math.min(replyTokens(turn.id), turn.params.maxTokens), joined: false, finished });
        }),
    );
    if (!this.looping) void this.loop();
    return Promise.all(done).then(() => undefined);
  }

  async close(): Promise<void> {}

  private async loop(): Promise<void> {
    this.looping = true;
    while (this.running.length > 0) {
      let joining = 0;
      for (const s of this.running) if (!s.joined) joining++;
      await sleep(SIM_MODEL.fixedMs + SIM_MODEL.perSeqMs * this.running.length + SIM_MODEL.prefillMs * joining);
      for (let i = this.running.length - 1; i >= 0; i--) {
        const s = this.running[i]!;
        s.joined = true;
        const cancelled = s.turn.signal.aborted;
        if (!cancelled) {
          s.tokens++;
          s.emit({ type: 'delta', text: 'tok ' });
        }
        if (cancelled || s.tokens >= s.length) {
          s.emit({ type: 'done', usage: { promptTokens: 100, completionTokens: s.tokens }, finish: cancelled ? 'cancelled' : 'stop' });
          this.running.splice(i, 1);
          s.finished();
        }
      }
    }
    this.looping = false;
  }
}
