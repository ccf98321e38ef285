/**
 * One conversation, whatever the front door: audio in (decoded, segmented), history,
 * turn state machine, barge-in. Front doors (native, Realtime) are thin adapters that
 * translate their wire messages to these calls and SessionEvents (types.ts) back to the wire.
 *
 * A session runs at most one turn at a time, because a turn's prompt is the history up to
 * and including its own reply. Utterances that finish while a turn runs wait, and are merged
 * into the next turn when `coalesce` is on (one question asked in two breaths is one turn).
 * That per-session ordering lives here rather than in the scheduler because only the
 * session knows its history; the scheduler batches and admits across sessions.
 */
import { EarshotError } from '../../protocol/errors.js';
import { joinClips } from '../audio/clip.js';
import { SAMPLE_RATE, type Pcm16k } from '../audio/format.js';
import { audioMsOf, type Message, type Part, type TurnParams, type TurnRequest } from '../engines/types.js';
import type { SegmentEvent } from '../vad/segmenter.js';
import type { SpokenReply } from '../voice/types.js';
import type { AudioInput, AudioSink } from './audio-input.js';
import { Transcriber } from './transcriber.js';
import type { HistoryItem, SessionDeps, SessionEvents, SessionSettings, TurnInfo, TurnResult } from './types.js';

/** Silence put between coalesced utterances so the model hears two phrases, not one. */
const COALESCE_GAP_SAMPLES = SAMPLE_RATE / 5;

const NOTHING = (): void => {};

interface PendingUtterance {
  audio: Pcm16k;
  startMs?: number;
  endMs?: number;
}

interface RunningTurn {
  id: string;
  /** History id for the reply (a front door may have announced it already). */
  replyItemId: string | undefined;
  controller: AbortController;
  reply: string;
  deltas: number;
  readyAt: number;
  /** The reply being spoken, with its own abort so speech stops even after the engine finished. */
  speech: { reply: SpokenReply; controller: AbortController; samples: number; ended: boolean } | undefined;
  /** The engine's result, held while the speech still plays out. */
  result: TurnResult | undefined;
}

export class Session {
  readonly id: string;
  readonly settings: SessionSettings;
  readonly history: HistoryItem[] = [];
  private readonly deps: SessionDeps;
  private readonly events: SessionEvents;
  private input: AudioInput | undefined;
  /** What the audio input hears comes back here. */
  private readonly sink: AudioSink = {
    received: (samples) => {
      this.receivedSamples += samples;
    },
    utterance: (audio) => this.onUtterance({ audio }),
  };
  private receivedSamples = 0;
  private readonly pending: PendingUtterance[] = [];
  private running: RunningTurn | undefined;
  private readonly transcriber: Transcriber;
  private turnCounter = 0;
  private itemCounter = 0;
  /** User items the history cap dropped: the echo test engine numbers turns with them. */
  private droppedUserTurns = 0;
  private closed = false;

  constructor(id: string, deps: SessionDeps, settings: SessionSettings, events: SessionEvents) {
    this.id = id;
    this.deps = deps;
    this.settings = settings;
    this.events = events;
    this.transcriber = new Transcriber(id, deps, (itemId, event) => events.transcript?.(itemId, event));
  }

  /** Replaces the audio input (closing the old one and dropping what it buffered). */
  setAudioInput(input: AudioInput): void {
    this.input?.close();
    this.input = input;
  }

  get turnRunning(): boolean {
    return this.running !== undefined;
  }

  get streamMs(): number {
    return (this.receivedSamples * 1000) / SAMPLE_RATE;
  }

  /** Decodes one packet of the session's codec (`bytes` from `start` on: no view per frame); throws EarshotError('bad_audio') for bad packets. */
  pushAudio(bytes: Uint8Array, start = 0): void {
    this.deps.metrics.frames.inc();
    if (!this.input) throw new EarshotError('protocol_order', 'no audio input configured for this session');
    this.input.push(bytes, start, this.sink);
  }

  /**
   * Ends the current utterance now: with VAD, what was heard so far; without, the whole buffer.
   * Returns false if there was nothing (true when another thread decodes: it tells `done`). `done`
   * runs once all audio sent before the commit is judged; `committed`: there was something.
   */
  commit(done: (committed: boolean) => void = NOTHING): boolean {
    if (!this.input) {
      done(false);
      return false;
    }
    return this.input.commit(this.sink, done);
  }

  /**
   * A typed user turn. Utterances still waiting behind the running turn were spoken before
   * the text, so they join this turn's user message ahead of it: one turn answers both, and
   * cancelling the running turn does not start a second one behind this.
   */
  addText(text: string): void {
    const waiting = this.pending.splice(0);
    this.cancel();
    const parts: Part[] = waiting.length > 0 ? [{ type: 'audio', samples: joinClips(waiting.map((u) => u.audio), COALESCE_GAP_SAMPLES) }, { type: 'text', text }] : [{ type: 'text', text }];
    const item = this.addItem('user', parts);
    if (this.settings.autoRespond) this.startTurn({ turnId: this.nextTurnId(), source: 'text', audioMs: audioMsOf(parts), text, itemId: item.id });
    this.transcribe(item);
  }

  /** Adds an item without starting a turn (Realtime conversation.item.create). */
  addItem(role: HistoryItem['role'], parts: Part[], id?: string): HistoryItem {
    const item: HistoryItem = { id: id ?? `item_${this.id}_${++this.itemCounter}`, role, parts };
    this.history.push(item);
    this.trimHistory();
    return item;
  }

  deleteItem(id: string): boolean {
    const index = this.history.findIndex((item) => item.id === id);
    if (index < 0) return false;
    this.transcriber.cancel(id);
    this.history.splice(index, 1);
    return true;
  }

  /** Starts a turn on the current history (Realtime response.create). Returns its id, or undefined when the scheduler refused it (busy and turnEnded were emitted); throws while a turn runs. */
  respond(overrides: Partial<TurnParams> & { instructions?: string; replyItemId?: string } = {}): string | undefined {
    if (this.running) throw new EarshotError('protocol_order', 'a response is already in progress');
    const lastUser = [...this.history].reverse().find((item) => item.role === 'user');
    const audioMs = lastUser ? audioMsOf(lastUser.parts) : 0;
    const turnId = this.nextTurnId();
    return this.startTurn({ turnId, source: audioMs > 0 ? 'audio' : 'text', audioMs, itemId: lastUser?.id ?? '' }, overrides) ? turnId : undefined;
  }

  /**
   * Cancels the running turn, if any. The turn ends here and now, so a late delta from the
   * engine can never reach the client after `done {finish: 'cancelled'}`.
   */
  cancel(): boolean {
    const running = this.running;
    if (!running) return false;
    running.controller.abort();
    // A reply still being spoken has its engine usage already.
    const usage = running.result?.type === 'done' ? running.result.usage : { promptTokens: 0, completionTokens: running.deltas };
    this.finishTurn(running, { type: 'done', usage, finish: 'cancelled', text: running.reply });
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pending.length = 0;
    this.cancel();
    this.transcriber.close();
    this.input?.close();
  }

  handleSegment(event: SegmentEvent): void {
    if (this.closed) return;
    if (event.type === 'failed') {
      this.events.inputFailed(new EarshotError('engine_unavailable', `turn detection stopped: ${event.message}; reconnect`, { fatal: true }));
      return;
    }
    if (event.type === 'speech_started') {
      this.events.speechStarted(event.atMs);
      if (this.settings.bargeIn && this.running) {
        this.deps.logger.debug({ session: this.id, turn: this.running.id }, 'barge-in');
        this.cancel();
      }
      return;
    }
    this.deps.metrics.utterances.inc({ reason: event.reason });
    this.events.speechStopped(event.atMs, event.startMs, event.endMs);
    this.onUtterance({ audio: event.audio, startMs: event.startMs, endMs: event.endMs });
  }

  private onUtterance(utterance: PendingUtterance): void {
    if (this.closed) return;
    if (!this.settings.autoRespond) {
      if (this.events.utterance) this.events.utterance(utterance.audio);
      else this.transcribe(this.addItem('user', [{ type: 'audio', samples: utterance.audio }]));
      return;
    }
    if (this.running) {
      this.pending.push(utterance);
      return;
    }
    this.startAudioTurn([utterance]);
  }

  private startAudioTurn(utterances: PendingUtterance[]): void {
    const parts: Part[] = [{ type: 'audio', samples: joinClips(utterances.map((u) => u.audio), COALESCE_GAP_SAMPLES) }];
    const item = this.addItem('user', parts);
    const info: TurnInfo = { turnId: this.nextTurnId(), source: 'audio', audioMs: audioMsOf(parts), itemId: item.id };
    const first = utterances[0]!;
    const last = utterances[utterances.length - 1]!;
    if (first.startMs !== undefined) info.startMs = first.startMs;
    if (last.endMs !== undefined) info.endMs = last.endMs;
    // The turn is announced first, so a door can tell which turn a transcript belongs to.
    this.startTurn(info);
    this.transcribe(item);
  }

  /** Writes down what the user said in `item`'s audio when transcription is on (see Transcriber). */
  transcribe(item: HistoryItem): void {
    const hints = this.settings.transcription;
    if (hints && !this.closed) this.transcriber.transcribe(item, hints, this.settings.params.maxTokens);
  }

  private startTurn(info: TurnInfo, overrides: Partial<TurnParams> & { instructions?: string; replyItemId?: string } = {}): boolean {
    const { instructions, replyItemId, ...params } = overrides;
    const controller = new AbortController();
    const readyAt = performance.now();
    const running: RunningTurn = { id: info.turnId, replyItemId, controller, reply: '', deltas: 0, readyAt, speech: undefined, result: undefined };
    const system = instructions ?? this.settings.system;
    const messages: Message[] = system ? [{ role: 'system', parts: [{ type: 'text', text: system }] }, ...this.history] : [...this.history];
    const turn: TurnRequest = {
      id: info.turnId,
      sessionId: this.id,
      door: this.deps.door,
      messages,
      params: { ...this.settings.params, ...params },
      signal: controller.signal,
      readyAt,
      droppedUserTurns: this.droppedUserTurns,
    };
    this.running = running;
    this.events.turnStarted(info);
    this.startSpeech(running);
    try {
      this.deps.scheduler.submit(turn, (event) => {
        if (event.type === 'delta') {
          if (this.running !== running) return;
          running.reply += event.text;
          running.deltas++;
          this.events.delta(info.turnId, event.text);
          running.speech?.reply.push(event.text);
          return;
        }
        const result: TurnResult = event.type === 'done' ? { ...event, text: running.reply } : { type: 'error', error: event.error, text: running.reply };
        if (!running.speech || result.type === 'error' || running.speech.ended) return this.finishTurn(running, result);
        // The turn lasts until its last audio: barge-in still cancels it, and `done` follows the audio.
        running.result = result;
        running.speech.reply.end();
      });
      return true;
    } catch (err) {
      this.running = undefined;
      running.speech?.controller.abort();
      const error = EarshotError.from(err);
      this.events.busy(error, info.turnId);
      this.events.turnEnded(info.turnId, { type: 'error', error, text: '' });
      return false;
    }
  }

  private startSpeech(running: RunningTurn): void {
    const voice = this.settings.voice;
    if (voice === undefined || !this.deps.speak || this.running !== running) return;
    const controller = new AbortController();
    const speech = { reply: this.deps.speak(voice, controller.signal, this.settings.speed ?? 1), controller, samples: 0, ended: false };
    running.speech = speech;
    void this.playSpeech(running, speech);
  }

  /** Streams the reply's audio to the front door as it is made; the turn finishes after the last chunk. */
  private async playSpeech(running: RunningTurn, speech: NonNullable<RunningTurn['speech']>): Promise<void> {
    let failure: EarshotError | undefined;
    try {
      for await (const pcm of speech.reply.audio()) {
        if (this.running !== running) return;
        if (speech.samples === 0) this.deps.metrics.firstAudio.observe((performance.now() - running.readyAt) / 1000);
        speech.samples += pcm.length;
        this.events.audio?.(running.id, pcm);
      }
      failure = speech.reply.failed;
    } catch (err) {
      failure = EarshotError.from(err);
    }
    if (this.running !== running) return;
    speech.ended = true;
    if (failure) {
      this.deps.logger.warn({ session: this.id, turn: running.id, err: failure }, 'voice stage failed; the reply stays text');
      this.events.voiceFailed?.(running.id, failure);
    }
    if (running.result) this.finishTurn(running, running.result);
  }

  /** The assistant item a turn produced. */
  replyOf(turnId: string): HistoryItem | undefined {
    return this.history.find((item) => item.turnId === turnId);
  }

  private finishTurn(running: RunningTurn, result: TurnResult): void {
    if (this.running !== running) return;
    this.running = undefined;
    running.speech?.controller.abort();
    if (running.reply) {
      const item = this.addItem('assistant', [{ type: 'text', text: running.reply }], running.replyItemId);
      item.turnId = running.id;
      if (running.speech) item.speech = { chunks: [...running.speech.reply.spoken], samples: running.speech.samples };
      if (result.type !== 'done' || result.finish !== 'stop') item.interrupted = true;
    }
    this.events.turnEnded(running.id, result);
    if (this.closed || this.pending.length === 0) return;
    const next = this.settings.coalesce ? this.pending.splice(0) : this.pending.splice(0, 1);
    this.startAudioTurn(next);
  }

  private nextTurnId(): string {
    return `${this.id}_t${++this.turnCounter}`;
  }

  /** Oldest items go first once the turn count or the audio kept exceeds its cap. */
  private trimHistory(): void {
    const { maxHistoryTurns, maxHistoryAudioMs } = this.settings;
    let audioMs = this.history.reduce((ms, item) => ms + audioMsOf(item.parts), 0);
    while (this.history.length > 1 && (this.history.length > maxHistoryTurns || audioMs > maxHistoryAudioMs)) {
      const dropped = this.history.shift()!;
      audioMs -= audioMsOf(dropped.parts);
      if (dropped.role === 'user') this.droppedUserTurns++;
    }
  }
}
