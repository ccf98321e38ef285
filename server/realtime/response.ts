/**
 * One Realtime response: its ids, its lifecycle (created → output item and content parts added
 * → deltas → parts done → item done → response.done) and the wire events of each step, in the
 * client's dialect. The reply item's content is a list of output parts; a part owns its own
 * delta and done events, so a new kind of output (spoken audio with its transcript) is a new
 * part, not a new branch here.
 */
import type { Usage } from '../../protocol/native.js';
import type { ItemContent, PartRef, WireItem, WireResponse, WireUsage } from '../../protocol/realtime.js';
import { createOutputEncoder, type OutputEncoder, type OutputFormat } from '../voice/output.js';
import type { TurnResult } from '../session/types.js';
import type { Pcm24k } from '../voice/types.js';
import { betaFormat, gaFormat } from './audio.js';
import type { RealtimeWire } from './wire.js';

export type CancelReason = 'turn_detected' | 'client_cancelled';

/** How a spoken response sounds: its output format and voice (as the client named it). */
export interface ResponseAudio {
  format: OutputFormat;
  voice: string;
}

/** One content part of the reply item. */
export interface OutputPart {
  /** Announces the part (response.content_part.added). */
  added(): void;
  /** A text delta of the reply: the text itself, or the transcript of what is spoken. */
  text(delta: string): void;
  /** A chunk of the spoken reply (parts that do not speak ignore it). */
  audio?(pcm: Pcm24k): void;
  /** The reply is over with `text` as its whole text (`cut`: cancelled): sends the part's done events and returns its item content. */
  done(text: string, cut: boolean): ItemContent;
}

/** The reply as text: response.output_text.* (beta: response.text.*). */
export class TextPart implements OutputPart {
  private readonly wire: RealtimeWire;
  private readonly ref: PartRef;

  constructor(wire: RealtimeWire, ref: PartRef) {
    this.wire = wire;
    this.ref = ref;
  }

  added(): void {
    this.wire.send({ type: 'response.content_part.added', ...this.ref, part: { type: 'text', text: '' } });
  }

  text(delta: string): void {
    this.wire.send({ type: this.wire.beta ? 'response.text.delta' : 'response.output_text.delta', ...this.ref, delta });
  }

  done(text: string): ItemContent {
    this.wire.send({ type: this.wire.beta ? 'response.text.done' : 'response.output_text.done', ...this.ref, text });
    this.wire.send({ type: 'response.content_part.done', ...this.ref, part: { type: 'text', text } });
    return { type: this.wire.beta ? 'text' : 'output_text', text };
  }
}

/** The longest audio one delta carries: the engine synthesises a sentence at a time. */
export const MAX_DELTA_MS = 200;

/**
 * The reply spoken, with the text as its transcript: response.output_audio.* and
 * response.output_audio_transcript.* (beta: response.audio.*, response.audio_transcript.*).
 * Audio deltas are base64 in the session's output format, at most MAX_DELTA_MS each as
 * OpenAI sends them, so a client can start playing early and no one websocket message holds
 * a whole sentence (a slow reader's buffer limit then applies per small message).
 */
export class AudioPart implements OutputPart {
  private readonly wire: RealtimeWire;
  private readonly ref: PartRef;
  private readonly encoder: OutputEncoder;
  private readonly maxDeltaBytes: number;

  constructor(wire: RealtimeWire, ref: PartRef, format: OutputFormat) {
    this.wire = wire;
    this.ref = ref;
    this.encoder = createOutputEncoder(format);
    // pcm16 is two bytes a sample; G.711 one byte a sample at 8 kHz.
    this.maxDeltaBytes = format.kind === 'pcm' ? (format.rate / 1000) * MAX_DELTA_MS * 2 : 8 * MAX_DELTA_MS;
  }

  added(): void {
    this.wire.send({ type: 'response.content_part.added', ...this.ref, part: { type: 'audio', transcript: '' } });
  }

  text(delta: string): void {
    this.wire.send({ type: this.wire.beta ? 'response.audio_transcript.delta' : 'response.output_audio_transcript.delta', ...this.ref, delta });
  }

  audio(pcm: Pcm24k): void {
    this.sendAudio(this.encoder.encode(pcm));
  }

  done(transcript: string, cut: boolean): ItemContent {
    const { wire } = this;
    // A cut reply stops where it was: the resampler's tail is not sent.
    if (!cut) this.sendAudio(this.encoder.flush());
    wire.send({ type: wire.beta ? 'response.audio.done' : 'response.output_audio.done', ...this.ref });
    wire.send({ type: wire.beta ? 'response.audio_transcript.done' : 'response.output_audio_transcript.done', ...this.ref, transcript });
    wire.send({ type: 'response.content_part.done', ...this.ref, part: { type: 'audio', transcript } });
    return { type: wire.beta ? 'audio' : 'output_audio', transcript };
  }

  private sendAudio(bytes: Uint8Array): void {
    const type = this.wire.beta ? 'response.audio.delta' : 'response.output_audio.delta';
    const encoded = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let start = 0; start < encoded.length; start += this.maxDeltaBytes) {
      this.wire.send({ type, ...this.ref, delta: encoded.toString('base64', start, Math.min(start + this.maxDeltaBytes, encoded.length)) });
    }
  }
}

export class RealtimeResponse {
  readonly id: string;
  /** The assistant item the reply becomes. */
  readonly itemId: string;
  /** The item the reply follows in the conversation. */
  readonly previousItemId: string | null;
  readonly maxOutputTokens: number | 'inf';
  /** Spoken (audio with its transcript) or text. */
  readonly output: 'audio' | 'text';
  /** The session turn producing this response, set when it starts. */
  turnId = '';
  cancelReason: CancelReason | undefined;
  private readonly wire: RealtimeWire;
  private readonly parts: OutputPart[];
  private readonly audioOut: ResponseAudio | undefined;

  /** `audio`: how a spoken response sounds (undefined: a text response). */
  constructor(wire: RealtimeWire, previousItemId: string | null, maxOutputTokens: number | 'inf', audio: ResponseAudio | undefined) {
    this.wire = wire;
    this.id = wire.newId('resp');
    this.itemId = wire.newId('item');
    this.previousItemId = previousItemId;
    this.maxOutputTokens = maxOutputTokens;
    this.output = audio ? 'audio' : 'text';
    this.audioOut = audio;
    this.parts = [audio ? new AudioPart(wire, this.partRef(0), audio.format) : new TextPart(wire, this.partRef(0))];
  }

  partRef(contentIndex: number): PartRef {
    return { response_id: this.id, item_id: this.itemId, output_index: 0, content_index: contentIndex };
  }

  started(turnId: string): void {
    this.turnId = turnId;
    const { wire } = this;
    wire.send({ type: 'response.created', response: this.render('in_progress', [], null, null) });
    const item = this.item([], 'in_progress');
    wire.send({ type: 'response.output_item.added', response_id: this.id, output_index: 0, item });
    wire.send({ type: wire.beta ? 'conversation.item.created' : 'conversation.item.added', item, previous_item_id: this.previousItemId });
    for (const part of this.parts) part.added();
  }

  delta(text: string): void {
    for (const part of this.parts) part.text(text);
  }

  audio(pcm: Pcm24k): void {
    for (const part of this.parts) part.audio?.(pcm);
  }

  ended(result: TurnResult): void {
    const { wire } = this;
    const { status, details } = outcome(result, this.cancelReason);
    const content = this.parts.map((part) => part.done(result.text, status === 'cancelled'));
    const item = this.item(content, status === 'completed' ? 'completed' : 'incomplete');
    if (!wire.beta) wire.send({ type: 'conversation.item.done', item, previous_item_id: this.previousItemId });
    wire.send({ type: 'response.output_item.done', response_id: this.id, output_index: 0, item });
    wire.send({ type: 'response.done', response: this.render(status, [item], details, result.type === 'done' ? wireUsage(result.usage) : null) });
  }

  private item(content: ItemContent[], status: WireItem['status']): WireItem {
    return { id: this.itemId, object: 'realtime.item', type: 'message', status, role: 'assistant', content };
  }

  private render(status: WireResponse['status'], output: WireItem[], details: WireResponse['status_details'], usage: WireUsage | null): WireResponse {
    const audio = this.audioOut;
    const sound = !audio ? {} : this.wire.beta ? { voice: audio.voice, output_audio_format: betaFormat(audio.format) } : { audio: { output: { format: gaFormat(audio.format), voice: audio.voice } } };
    return {
      id: this.id,
      object: 'realtime.response',
      status,
      status_details: details,
      output,
      conversation_id: this.wire.conversationId,
      output_modalities: [this.output],
      ...(this.wire.beta ? { modalities: this.output === 'audio' ? (['text', 'audio'] as ['text', 'audio']) : (['text'] as ['text']) } : {}),
      ...sound,
      max_output_tokens: this.maxOutputTokens,
      usage,
      metadata: null,
    };
  }
}

function outcome(result: TurnResult, cancelReason: CancelReason | undefined): { status: WireResponse['status']; details: WireResponse['status_details'] } {
  if (result.type === 'error')
    return { status: 'failed', details: { type: 'failed', error: { type: result.error.openaiType, code: result.error.code, message: result.error.message } } };
  if (result.finish === 'cancelled') return { status: 'cancelled', details: { type: 'cancelled', reason: cancelReason ?? 'client_cancelled' } };
  if (result.finish === 'length') return { status: 'incomplete', details: { type: 'incomplete', reason: 'max_output_tokens' } };
  return { status: 'completed', details: { type: 'completed' } };
}

function wireUsage(usage: Usage): WireUsage {
  const audio = usage.audioTokens ?? 0;
  return {
    total_tokens: usage.promptTokens + usage.completionTokens,
    input_tokens: usage.promptTokens,
    output_tokens: usage.completionTokens,
    input_token_details: { text_tokens: Math.max(0, usage.promptTokens - audio), audio_tokens: audio, cached_tokens: 0 },
    output_token_details: { text_tokens: usage.completionTokens, audio_tokens: 0 },
  };
}
