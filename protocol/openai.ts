/**
 * OpenAI Chat Completions request, as Earshot's REST front door accepts it. Objects are
 * loose: OpenAI itself ignores fields it does not use (clients send `logprobs`, `tools: []`,
 * `metadata`...), so unknown fields are tolerated rather than rejected; fields Earshot reads
 * are validated strictly.
 */
import { z } from 'zod';
import type { Usage } from './native.js';

export const AUDIO_FORMATS = ['wav', 'mp3'] as const;
/** Spoken output formats with an encoder at hand (OpenAI also offers aac and flac). */
export const SPEECH_FORMATS = ['mp3', 'opus', 'wav', 'pcm'] as const;
/** Chat completions' `audio.format`; streaming allows pcm16 only, as at OpenAI. */
export const CHAT_AUDIO_FORMATS = ['wav', 'mp3', 'opus', 'pcm16'] as const;

export const TextPart = z.looseObject({ type: z.literal('text'), text: z.string() });

export const InputAudioPart = z.looseObject({
  type: z.literal('input_audio'),
  input_audio: z.looseObject({
    /** Base64 of the whole file (a `data:...;base64,` prefix is tolerated). */
    data: z.string().min(1),
    format: z.enum(AUDIO_FORMATS, { error: `format must be one of: ${AUDIO_FORMATS.join(', ')}` }),
  }),
});

export const ImageUrlPart = z.looseObject({
  type: z.literal('image_url'),
  image_url: z.looseObject({ url: z.string().min(1), detail: z.enum(['auto', 'low', 'high']).optional() }),
});

export const ContentPart = z.discriminatedUnion('type', [TextPart, InputAudioPart, ImageUrlPart], {
  error: 'content part type must be one of: text, input_audio, image_url',
});
export type ContentPart = z.infer<typeof ContentPart>;

const Content = z.union([z.string(), z.array(ContentPart).min(1)]);

export const ChatMessage = z.discriminatedUnion(
  'role',
  [
    z.looseObject({ role: z.enum(['system', 'developer']), content: Content }),
    z.looseObject({ role: z.literal('user'), content: Content }),
    // An earlier answer in the history; OpenAI allows a null content there (tool calls), which carries no text for us.
    z.looseObject({ role: z.literal('assistant'), content: Content.nullable().optional() }),
  ],
  { error: 'role must be one of: system, developer, user, assistant' },
);
export type ChatMessage = z.infer<typeof ChatMessage>;

const tokens = z.number().int().min(1).max(1 << 20);

export const ChatCompletionRequest = z.looseObject({
  /** Optional: the served model when left out. */
  model: z.string().min(1).optional(),
  messages: z.array(ChatMessage).min(1),
  max_tokens: tokens.nullish(),
  max_completion_tokens: tokens.nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  stop: z.union([z.string().min(1), z.array(z.string().min(1)).max(4)]).nullish(),
  seed: z.number().int().nullish(),
  user: z.string().max(256).optional(),
  n: z.literal(1, { error: 'only n=1 is supported' }).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  modalities: z.array(z.enum(['text', 'audio'], { error: 'modalities must be text or audio' })).min(1).nullish(),
  /** Spoken output, with `modalities: ['text', 'audio']`; `voice` is checked against the voice stage. */
  audio: z
    .looseObject({
      voice: z.string().min(1),
      format: z.enum(CHAT_AUDIO_FORMATS, { error: `format must be one of: ${CHAT_AUDIO_FORMATS.join(', ')}` }),
    })
    .nullish(),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

/** `messages[0].content[1].input_audio.format`: the path of a zod issue, as OpenAI's `param` names a field. */
export function paramOf(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)), '');
}

/**
 * The issue to report. A union (content: string | parts) fails as a whole with "Invalid input";
 * the branch whose failure lies deepest is the one the client meant, so its issue names the field.
 */
export function describeIssue(error: z.ZodError): { param: string; message: string } {
  let issue: z.core.$ZodIssue = error.issues[0]!;
  let path: PropertyKey[] = [...issue.path];
  while (issue.code === 'invalid_union' && issue.errors.length > 0) {
    const branch = issue.errors.map((issues) => issues[0]!).reduce((a, b) => (b.path.length > a.path.length ? b : a));
    if (branch.path.length === 0 && branch.code !== 'invalid_union') break;
    issue = branch;
    path = [...path, ...branch.path];
  }
  return { param: paramOf(path), message: issue.message };
}

export const TRANSCRIPTION_FORMATS = ['json', 'text', 'verbose_json', 'srt', 'vtt'] as const;
/** Formats whose text comes per VAD segment, with times. */
export const SEGMENTED_FORMATS: readonly TranscriptionRequest['response_format'][] = ['verbose_json', 'srt', 'vtt'];

const formBool = z.enum(['true', 'false'], { error: 'must be true or false' }).transform((v) => v === 'true');

/** Form fields of POST /v1/audio/transcriptions (the `file` part is read separately); multipart fields are strings, repeated ones (`x[]`) lists. */
export const TranscriptionRequest = z
  .looseObject({
    /** Optional: the served model when left out. */
    model: z.string().min(1).optional(),
    language: z.string().min(2).max(16).optional(),
    prompt: z.string().max(4096).optional(),
    response_format: z.enum(TRANSCRIPTION_FORMATS, { error: `response_format must be one of: ${TRANSCRIPTION_FORMATS.join(', ')}` }).default('json'),
    temperature: z.coerce.number().min(0).max(1).optional(),
    stream: formBool.optional(),
    'timestamp_granularities[]': z
      .array(z.enum(['segment', 'word'], { error: 'timestamp_granularities must be segment or word' }))
      .refine((g) => !g.includes('word'), 'word timestamps are not available (segment times come from the VAD)')
      .optional(),
  })
  .superRefine((r, ctx) => {
    if (r.stream && r.response_format !== 'json' && r.response_format !== 'text')
      ctx.addIssue({ code: 'custom', path: ['stream'], message: `response_format ${r.response_format} cannot be streamed (json or text can)` });
  });
export type TranscriptionRequest = z.infer<typeof TranscriptionRequest>;

/** POST /v1/audio/speech (OpenAI's TTS API). The input's length limit is the server's (--speech-max-input-chars). */
export const SpeechRequest = z.looseObject({
  model: z.string().min(1),
  input: z.string().min(1, { error: 'input must not be empty' }),
  voice: z.union([z.string().min(1), z.looseObject({ id: z.string().min(1) })]),
  response_format: z.enum(SPEECH_FORMATS, { error: `response_format must be one of: ${SPEECH_FORMATS.join(', ')} (aac and flac are not offered)` }).default('mp3'),
  speed: z.number().min(0.25).max(4).default(1),
  stream_format: z.enum(['audio', 'sse'], { error: 'stream_format must be audio or sse' }).default('audio'),
  instructions: z.string().optional(),
});
export type SpeechRequest = z.infer<typeof SpeechRequest>;

/** A transcription's token usage in OpenAI's shape (REST transcriptions and Realtime `input_audio_transcription.completed`). */
export function transcriptionUsage({ promptTokens, completionTokens, audioTokens }: Usage) {
  return {
    type: 'tokens' as const,
    input_tokens: promptTokens,
    output_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    ...(audioTokens !== undefined ? { input_token_details: { audio_tokens: audioTokens, text_tokens: promptTokens - audioTokens } } : {}),
  };
}
