/**
 * Conversation items: the session's history seen as Realtime items. Creating, deleting,
 * retrieving and truncating items, user utterances becoming items, and each item's wire shape.
 */
import { EarshotError } from '../../protocol/errors.js';
import { transcriptionUsage } from '../../protocol/openai.js';
import type { ClientEvent, ContentPart, ItemContent, WireItem } from '../../protocol/realtime.js';
import { SAMPLE_RATE, type Pcm16k } from '../audio/format.js';
import type { Part } from '../engines/types.js';
import type { Session } from '../session/session.js';
import type { HistoryItem } from '../session/types.js';
import type { TranscriptEvent } from '../session/transcriber.js';
import { truncateReply } from '../session/truncate.js';
import { decodeClip, type InputFormat } from './audio.js';
import { RealtimeError, type RealtimeWire } from './wire.js';

export class RealtimeItems {
  private readonly session: Session;
  private readonly wire: RealtimeWire;

  constructor(session: Session, wire: RealtimeWire) {
    this.session = session;
    this.wire = wire;
  }

  find(id: string): HistoryItem {
    const item = this.session.history.find((i) => i.id === id);
    if (!item) throw new RealtimeError('bad_message', 'item_not_found', `no item with id '${id}'`, { param: 'item_id' });
    return item;
  }

  lastId(): string | null {
    return this.session.history.at(-1)?.id ?? null;
  }

  /** `format`: the session's input audio format, which `input_audio` content is in. */
  create(event: Extract<ClientEvent, { type: 'conversation.item.create' }>, format: InputFormat): void {
    const { item } = event;
    const previous = this.lastId();
    if (event.previous_item_id != null && event.previous_item_id !== previous)
      throw new EarshotError('unsupported', 'items can only be appended: previous_item_id must be the last item', { param: 'previous_item_id' });
    if (item.id !== undefined && this.session.history.some((i) => i.id === item.id))
      throw new EarshotError('bad_message', `an item with id '${item.id}' already exists`, { param: 'item.id' });
    const parts = item.content.map((c) => toPart(c, format));
    const added = this.session.addItem(item.role, parts, item.id ?? this.wire.newId('item'));
    this.announce(added, previous);
    // A user's audio item is heard like a committed utterance: with transcription on, its words follow (.delta/.completed/.failed).
    if (added.role === 'user') this.session.transcribe(added);
  }

  /** An ended utterance becomes the user item `itemId` (the one speech_started announced, if any). */
  addUtterance(itemId: string, audio: Pcm16k): HistoryItem {
    const previous = this.lastId();
    const item = this.session.addItem('user', [{ type: 'audio', samples: audio }], itemId);
    this.wire.send({ type: 'input_audio_buffer.committed', item_id: item.id, previous_item_id: previous });
    this.announce(item, previous);
    return item;
  }

  /** A user item's input transcription (its audio is content 0): deltas, then completed or failed; the item keeps the text. */
  transcript(itemId: string, event: TranscriptEvent): void {
    const ref = { item_id: itemId, content_index: 0 };
    if (event.type === 'delta') this.wire.send({ type: 'conversation.item.input_audio_transcription.delta', ...ref, delta: event.text });
    else if (event.type === 'completed')
      this.wire.send({ type: 'conversation.item.input_audio_transcription.completed', ...ref, transcript: event.text, usage: transcriptionUsage(event.usage) });
    else this.wire.send({ type: 'conversation.item.input_audio_transcription.failed', ...ref, error: this.wire.errorBody(event.error) });
  }

  retrieve(id: string): void {
    this.wire.send({ type: 'conversation.item.retrieved', item: this.render(this.find(id)) });
  }

  delete(id: string): void {
    this.find(id);
    this.session.deleteItem(id);
    this.wire.send({ type: 'conversation.item.deleted', item_id: id });
  }

  /**
   * Cuts an item's audio at audio_end_ms. A spoken reply keeps only the transcript heard by
   * then (what the next response sees); a user item's input audio is cut.
   */
  truncate(event: Extract<ClientEvent, { type: 'conversation.item.truncate' }>): void {
    const item = this.find(event.item_id);
    if (item.speech) {
      if (event.content_index !== 0) throw new EarshotError('bad_message', 'a spoken reply has its audio at content_index 0', { param: 'content_index' });
      truncateReply(item, event.audio_end_ms);
      this.wire.send({ type: 'conversation.item.truncated', item_id: item.id, content_index: 0, audio_end_ms: event.audio_end_ms });
      return;
    }
    const part = item.parts[event.content_index];
    if (part?.type !== 'audio') throw new EarshotError('bad_message', 'only audio content can be truncated', { param: 'content_index' });
    const samples = Math.round((event.audio_end_ms * SAMPLE_RATE) / 1000);
    if (samples > part.samples.length)
      throw new EarshotError('bad_message', `audio_end_ms ${event.audio_end_ms} is past the end of the audio`, { param: 'audio_end_ms' });
    item.parts[event.content_index] = { type: 'audio', samples: part.samples.slice(0, samples) };
    this.wire.send({ type: 'conversation.item.truncated', item_id: item.id, content_index: event.content_index, audio_end_ms: event.audio_end_ms });
  }

  private announce(item: HistoryItem, previous: string | null): void {
    const wire = this.render(item);
    if (this.wire.beta) {
      this.wire.send({ type: 'conversation.item.created', item: wire, previous_item_id: previous });
      return;
    }
    this.wire.send({ type: 'conversation.item.added', item: wire, previous_item_id: previous });
    this.wire.send({ type: 'conversation.item.done', item: wire, previous_item_id: previous });
  }

  render(item: HistoryItem): WireItem {
    return {
      id: item.id,
      object: 'realtime.item',
      type: 'message',
      status: item.interrupted ? 'incomplete' : 'completed',
      role: item.role,
      content: item.parts.flatMap((part): ItemContent[] => {
        if (part.type === 'audio') return [{ type: 'input_audio', transcript: item.transcript ?? null }];
        if (part.type !== 'text') return [];
        if (item.role !== 'assistant') return [{ type: 'input_text', text: part.text }];
        if (item.speech) return [{ type: this.wire.beta ? 'audio' : 'output_audio', transcript: part.text }];
        return [{ type: this.wire.beta ? 'text' : 'output_text', text: part.text }];
      }),
    };
  }
}

function toPart(content: ContentPart, format: InputFormat): Part {
  if (content.type === 'input_audio') return { type: 'audio', samples: decodeClip(format, Buffer.from(content.audio, 'base64')) };
  return { type: 'text', text: content.text };
}
