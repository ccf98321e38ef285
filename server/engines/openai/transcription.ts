/**
 * Transcription turns sent to the upstream's own `/audio/transcriptions` (a speech model such
 * as whisper or gpt-4o-transcribe served beside the chat model), when one is configured.
 * Asked with `stream: true`: servers that stream answer with `transcript.text.delta` /
 * `.done` events, the others (whisper-1 ignores `stream`) with one JSON body; both are read.
 */
import { z } from 'zod';
import type { Usage } from '../../../protocol/native.js';
import { SAMPLE_RATE } from '../../audio/format.js';
import { encodeWav16 } from '../../audio/wav.js';
import { clipOf } from '../transcribe.js';
import type { TurnRequest } from '../types.js';

/** What one upstream message carries: text to pass on, and whether the answer is complete. */
export interface Piece {
  text?: string;
  /** The whole text, sent at the end by streams that may have sent no deltas. */
  final?: string;
  finish?: 'stop' | 'length';
  usage?: Usage;
}

const UpstreamUsage = z.looseObject({
  type: z.string().optional(),
  input_tokens: z.number().optional(),
  output_tokens: z.number().optional(),
  input_token_details: z.looseObject({ audio_tokens: z.number().optional() }).nullish(),
});

const TranscriptEvent = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('transcript.text.delta'), delta: z.string() }),
  z.looseObject({ type: z.literal('transcript.text.done'), text: z.string(), usage: UpstreamUsage.nullish() }),
]);

const WholeTranscript = z.looseObject({ text: z.string(), usage: UpstreamUsage.nullish() });

/** Token usage maps to ours; a duration-only usage (whisper) leaves it to the delta count. */
function usageOf(usage: z.infer<typeof UpstreamUsage> | null | undefined): Usage | undefined {
  if (usage?.input_tokens === undefined || usage.output_tokens === undefined) return undefined;
  const audioTokens = usage.input_token_details?.audio_tokens;
  return { promptTokens: usage.input_tokens, completionTokens: usage.output_tokens, ...(audioTokens !== undefined ? { audioTokens } : {}) };
}

export function transcriptionForm(model: string, turn: TurnRequest): FormData {
  const form = new FormData();
  form.set('file', new Blob([encodeWav16(clipOf(turn), SAMPLE_RATE) as Uint8Array<ArrayBuffer>], { type: 'audio/wav' }), 'clip.wav');
  form.set('model', model);
  form.set('response_format', 'json');
  form.set('stream', 'true');
  form.set('temperature', String(turn.params.temperature));
  if (turn.hints?.language) form.set('language', turn.hints.language);
  if (turn.hints?.prompt) form.set('prompt', turn.hints.prompt);
  return form;
}

/** One streamed event; other event types (logprobs, segments) carry nothing we pass on. Returns undefined when the JSON has another shape. */
export function transcriptEvent(json: unknown): Piece | undefined {
  const parsed = TranscriptEvent.safeParse(json);
  if (!parsed.success) return typeof json === 'object' && json !== null && 'type' in json ? {} : undefined;
  const event = parsed.data;
  if (event.type === 'transcript.text.delta') return { text: event.delta };
  const usage = usageOf(event.usage);
  return { finish: 'stop', final: event.text, ...(usage ? { usage } : {}) };
}

/** A whole (unstreamed) answer: its text as one piece. */
export function wholeTranscript(json: unknown): Piece | undefined {
  const parsed = WholeTranscript.safeParse(json);
  if (!parsed.success) return undefined;
  const usage = usageOf(parsed.data.usage);
  return { text: parsed.data.text, finish: 'stop', ...(usage ? { usage } : {}) };
}
