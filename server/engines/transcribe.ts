/**
 * Transcription as engine work: what a chat model is asked when a turn's kind is
 * `transcribe`, and the clip an engine with a transcription endpoint uploads. The instruction
 * sits in the user message, before the audio, as Gemma's own speech-recognition prompts do.
 */
import { joinClips } from '../audio/clip.js';
import type { Pcm16k } from '../audio/format.js';
import type { Message, TranscriptionHints, TurnRequest } from './types.js';

export function transcriptionInstruction(hints: TranscriptionHints = {}): string {
  const language = hints.language ? ` The speech is in language '${hints.language}'.` : '';
  const context = hints.prompt ? ` Context (earlier speech or spellings): ${hints.prompt}` : '';
  return `Transcribe the speech in the audio verbatim.${language} Reply with the transcript only, on one line, without comments.${context}`;
}

/** The messages a chat model gets: a reply's conversation as it is, a transcription's clip behind the instruction. */
export function promptOf(turn: TurnRequest): Message[] {
  if (turn.kind !== 'transcribe') return turn.messages;
  const clip = turn.messages[turn.messages.length - 1]!;
  return [{ role: 'user', parts: [{ type: 'text', text: transcriptionInstruction(turn.hints) }, ...clip.parts.filter((p) => p.type === 'audio')] }];
}

/** The audio of a transcription turn as one clip (parts a long upload was cut into are consecutive). */
export function clipOf(turn: TurnRequest): Pcm16k {
  return joinClips(turn.messages[turn.messages.length - 1]!.parts.flatMap((p) => (p.type === 'audio' ? [p.samples] : [])));
}
