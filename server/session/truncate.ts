/** A spoken reply cut to what the listener heard (native `truncate`, Realtime conversation.item.truncate). */
import { EarshotError } from '../../protocol/errors.js';
import { VOICE_SAMPLE_RATE } from '../voice/types.js';
import type { HistoryItem } from './types.js';

/**
 * The listener heard the reply of `item` only up to `audioEndMs`: its text becomes what was
 * spoken by then, so the next turn's context holds what the user actually heard. Chunks
 * heard in full are kept; the chunk playing at the cut keeps the share of its words that fits.
 */
export function truncateReply(item: HistoryItem, audioEndMs: number): string {
  if (item.role !== 'assistant' || !item.speech) throw new EarshotError('bad_message', `item ${item.id} is not a spoken reply`, { param: 'item_id' });
  const cut = Math.round((audioEndMs * VOICE_SAMPLE_RATE) / 1000);
  const { chunks, samples } = item.speech;
  const audioMs = Math.floor((samples * 1000) / VOICE_SAMPLE_RATE);
  if (cut > samples) throw new EarshotError('bad_message', `audio_end_ms ${audioEndMs} is beyond the reply's ${audioMs} ms of audio`, { param: 'audio_end_ms' });
  const heard: string[] = [];
  chunks.forEach((chunk, i) => {
    const end = chunks[i + 1]?.startSample ?? samples;
    if (chunk.startSample >= cut) return;
    if (end <= cut) heard.push(chunk.text.trim());
    else heard.push(leadingWords(chunk.text, (cut - chunk.startSample) / (end - chunk.startSample)));
  });
  const text = heard.filter(Boolean).join(' ');
  item.parts = [{ type: 'text', text }];
  item.speech = { chunks: chunks.filter((c) => c.startSample < cut), samples: cut };
  item.interrupted = true;
  return text;
}

/** The first `share` (0-1) of a text's words, at least one. */
function leadingWords(text: string, share: number): string {
  const words = text.trim().split(/\s+/);
  return words.slice(0, Math.max(1, Math.round(words.length * share))).join(' ');
}
