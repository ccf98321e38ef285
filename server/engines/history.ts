/**
 * Earlier turns' audio as text: the model hears only the newest message's clips; an earlier
 * message's clips become its transcript when one is known (the user's words, from input
 * transcription), else a short note each. One text for every engine, so a conversation reads
 * the same to Gemma on MLX and to an upstream.
 * Why: mlx_vlm takes one clip per prompt (and mlx_vlm.server fails once an earlier voice
 * message is in the history), and re-hearing old audio costs ~25 prompt tokens per second of
 * it on every later turn.
 */
import { SAMPLE_RATE, type Pcm16k } from '../audio/format.js';
import type { Message, Part } from './types.js';

/** The text that stands for an earlier clip, e.g. "[voice message, 2.4 s]". */
export function voiceNote(samples: Pcm16k): string {
  return `[voice message, ${(samples.length / SAMPLE_RATE).toFixed(1)} s]`;
}

function asText(message: Message): Message {
  const { parts, transcript } = message;
  if (!parts.some((p) => p.type === 'audio')) return message;
  // One transcript covers all of the message's audio (Transcriber hears its clips as one): it takes the first clip's place.
  if (transcript) {
    const first = parts.findIndex((p) => p.type === 'audio');
    return { ...message, parts: parts.flatMap((part, i): Part[] => (i === first ? [{ type: 'text', text: transcript }] : part.type === 'audio' ? [] : [part])) };
  }
  return { ...message, parts: parts.map((part) => (part.type === 'audio' ? { type: 'text', text: voiceNote(part.samples) } : part)) };
}

/** The history with audio kept only in the last message; messages without audio are passed through as they are. */
export function newestAudioOnly(messages: Message[]): Message[] {
  const last = messages.length - 1;
  return messages.map((message, index) => (index === last ? message : asText(message)));
}
