/**
 * OpenAI Realtime protocol on /v1/realtime: JSON text frames, GA event names and shapes,
 * with the beta aliases (`modalities`, `input_audio_format`, top-level `turn_detection`,
 * `max_response_output_tokens`). Client objects are loose: fields Earshot does not act on
 * (tools, tracing...) are accepted and ignored, so stock clients work unchanged.
 */
import { z } from 'zod';

/** 16 384 characters, as the native protocol's text limits. */
const Text = z.string().max(16_384);
const EventId = z.string().max(128).optional();
const MaxTokens = z.union([z.number().int().min(1).max(32_768), z.literal('inf')]);
const Modalities = z.array(z.enum(['text', 'audio'])).max(2);
/** Strict base64 (Buffer.from would silently skip bad characters); linear, no backtracking. */
const Base64 = z.string().regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, 'not valid base64');

export const AudioFormat = z.looseObject({
  type: z.string().max(64),
  rate: z.number().int().optional(),
});
export type AudioFormat = z.infer<typeof AudioFormat>;

export const BetaAudioFormat = z.string().max(64);

/** Speaking rate of spoken responses, OpenAI's bounds: 0.25 (slowest) to 1.5, 1 = the voice's own. */
const Speed = z.number().min(0.25).max(1.5);
const VoiceName = z.string().max(64);

export const TurnDetection = z.looseObject({
  type: z.enum(['server_vad', 'semantic_vad']),
  threshold: z.number().min(0).max(1).optional(),
  prefix_padding_ms: z.number().int().min(0).max(2000).optional(),
  silence_duration_ms: z.number().int().min(100).max(5000).optional(),
  create_response: z.boolean().optional(),
  interrupt_response: z.boolean().optional(),
  idle_timeout_ms: z.number().int().nullable().optional(),
  eagerness: z.enum(['low', 'medium', 'high', 'auto']).optional(),
});
export type TurnDetection = z.infer<typeof TurnDetection>;

/** Input transcription: `model` is accepted and the served model transcribes; `null` turns it off. */
export const InputTranscription = z.looseObject({
  model: z.string().max(256).optional(),
  language: z.string().min(2).max(16).optional(),
  prompt: z.string().max(4096).optional(),
});
export type InputTranscription = z.infer<typeof InputTranscription>;

export const SessionConfig = z.looseObject({
  /** `transcription`: VAD and transcripts, never a response (as `?intent=transcription`). */
  type: z.enum(['realtime', 'transcription']).optional(),
  model: z.string().max(256).optional(),
  instructions: Text.optional(),
  output_modalities: Modalities.optional(),
  modalities: Modalities.optional(),
  audio: z
    .looseObject({
      input: z
        .looseObject({
          format: AudioFormat.optional(),
          turn_detection: TurnDetection.nullable().optional(),
          transcription: InputTranscription.nullable().optional(),
        })
        .optional(),
      output: z
        .looseObject({
          format: AudioFormat.optional(),
          voice: VoiceName.optional(),
          speed: Speed.optional(),
        })
        .optional(),
    })
    .optional(),
  input_audio_format: BetaAudioFormat.optional(),
  input_audio_transcription: InputTranscription.nullable().optional(),
  output_audio_format: BetaAudioFormat.optional(),
  voice: VoiceName.optional(),
  speed: Speed.optional(),
  turn_detection: TurnDetection.nullable().optional(),
  max_output_tokens: MaxTokens.optional(),
  max_response_output_tokens: MaxTokens.optional(),
  temperature: z.number().min(0).max(2).optional(),
});
export type SessionConfig = z.infer<typeof SessionConfig>;

export const ContentPart = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('input_text'), text: Text }),
  z.looseObject({ type: z.literal('input_audio'), audio: Base64, transcript: z.string().nullable().optional() }),
  z.looseObject({ type: z.literal('output_text'), text: Text }),
  z.looseObject({ type: z.literal('text'), text: Text }),
]);
export type ContentPart = z.infer<typeof ContentPart>;

export const MessageItem = z.looseObject({
  id: z.string().min(1).max(64).optional(),
  type: z.literal('message'),
  role: z.enum(['user', 'assistant', 'system']),
  content: z.array(ContentPart).min(1).max(16),
});
export type MessageItem = z.infer<typeof MessageItem>;

export const ResponseConfig = z.looseObject({
  instructions: Text.optional(),
  output_modalities: Modalities.optional(),
  modalities: Modalities.optional(),
  max_output_tokens: MaxTokens.optional(),
  max_response_output_tokens: MaxTokens.optional(),
  temperature: z.number().min(0).max(2).optional(),
  /** This response's voice and format (GA); the beta names them `voice` and `output_audio_format`. */
  audio: z.looseObject({ output: z.looseObject({ format: AudioFormat.optional(), voice: VoiceName.optional() }).optional() }).optional(),
  voice: VoiceName.optional(),
  output_audio_format: BetaAudioFormat.optional(),
  /** Out-of-band responses (`none`) and custom `input` lists are not supported. */
  conversation: z.literal('auto').optional(),
});
export type ResponseConfig = z.infer<typeof ResponseConfig>;

const event = <T extends string, S extends z.ZodRawShape>(type: T, shape: S) =>
  z.looseObject({ type: z.literal(type), event_id: EventId, ...shape });

export const SessionUpdate = event('session.update', { session: SessionConfig });
export const AudioAppend = event('input_audio_buffer.append', { audio: Base64 });
export const AudioCommit = event('input_audio_buffer.commit', {});
export const AudioClear = event('input_audio_buffer.clear', {});
export const ItemCreate = event('conversation.item.create', { previous_item_id: z.string().nullable().optional(), item: MessageItem });
export const ItemDelete = event('conversation.item.delete', { item_id: z.string() });
export const ItemRetrieve = event('conversation.item.retrieve', { item_id: z.string() });
export const ItemTruncate = event('conversation.item.truncate', {
  item_id: z.string(),
  content_index: z.number().int().min(0),
  audio_end_ms: z.number().int().min(0),
});
export const ResponseCreate = event('response.create', { response: ResponseConfig.optional() });
export const ResponseCancel = event('response.cancel', { response_id: z.string().optional() });

export const CLIENT_EVENTS = {
  'session.update': SessionUpdate,
  'input_audio_buffer.append': AudioAppend,
  'input_audio_buffer.commit': AudioCommit,
  'input_audio_buffer.clear': AudioClear,
  'conversation.item.create': ItemCreate,
  'conversation.item.delete': ItemDelete,
  'conversation.item.retrieve': ItemRetrieve,
  'conversation.item.truncate': ItemTruncate,
  'response.create': ResponseCreate,
  'response.cancel': ResponseCancel,
} as const;

export type ClientEventType = keyof typeof CLIENT_EVENTS;
export type ClientEvent = { [T in ClientEventType]: z.infer<(typeof CLIENT_EVENTS)[T]> }[ClientEventType];

export type ParsedClientEvent =
  | { ok: true; event: ClientEvent }
  | { ok: false; eventId: string | undefined; code: 'invalid_json' | 'unknown_event' | 'invalid_event'; message: string; param?: string };

/** Parses one text frame; never throws, so every failure becomes an `error` event naming the client's event_id. */
export function parseClientEvent(text: string): ParsedClientEvent {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, eventId: undefined, code: 'invalid_json', message: 'the message is not valid JSON' };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || typeof (raw as { type?: unknown }).type !== 'string')
    return { ok: false, eventId: undefined, code: 'invalid_event', message: 'an event must be a JSON object with a string `type`', param: 'type' };
  const { type, event_id } = raw as { type: string; event_id?: unknown };
  const eventId = typeof event_id === 'string' ? event_id : undefined;
  const schema = Object.hasOwn(CLIENT_EVENTS, type) ? CLIENT_EVENTS[type as ClientEventType] : undefined;
  if (!schema) return { ok: false, eventId, code: 'unknown_event', message: `unknown event type '${type.slice(0, 64)}'`, param: 'type' };
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const param = issue.path.join('.');
    return { ok: false, eventId, code: 'invalid_event', message: `invalid '${type}': ${param ? `${param}: ` : ''}${issue.message}`, ...(param ? { param } : {}) };
  }
  return { ok: true, event: parsed.data as ClientEvent };
}

/* Server events: what Earshot sends (the subset of the GA union it produces, plus beta names). */

export interface ErrorBody {
  type: string;
  code: string;
  message: string;
  param: string | null;
  event_id: string | null;
}

export type ItemContent =
  | { type: 'input_text'; text: string }
  | { type: 'input_audio'; transcript: string | null }
  | { type: 'output_text' | 'text'; text: string }
  /** A spoken reply (beta: `audio`): the transcript only, never the audio bytes. */
  | { type: 'output_audio' | 'audio'; transcript: string };

export interface WireItem {
  id: string;
  object: 'realtime.item';
  type: 'message';
  status: 'completed' | 'incomplete' | 'in_progress';
  role: 'user' | 'assistant' | 'system';
  content: ItemContent[];
}

export interface WireUsage {
  total_tokens: number;
  input_tokens: number;
  output_tokens: number;
  input_token_details: { text_tokens: number; audio_tokens: number; cached_tokens: number };
  output_token_details: { text_tokens: number; audio_tokens: number };
}

export type ResponseStatus = 'in_progress' | 'completed' | 'cancelled' | 'incomplete' | 'failed';

export interface WireResponse {
  id: string;
  object: 'realtime.response';
  status: ResponseStatus;
  status_details:
    | null
    | { type: 'completed' }
    | { type: 'cancelled'; reason: 'turn_detected' | 'client_cancelled' }
    | { type: 'incomplete'; reason: 'max_output_tokens' }
    | { type: 'failed'; error: { type: string; code: string; message: string } };
  output: WireItem[];
  conversation_id: string;
  output_modalities: ['text'] | ['audio'];
  modalities?: ['text'] | ['text', 'audio'];
  /** A spoken response's voice and format (GA); the beta names them `voice` and `output_audio_format`. */
  audio?: { output: { format: { type: string; rate?: number }; voice: string } };
  voice?: string;
  output_audio_format?: string;
  max_output_tokens: number | 'inf';
  usage: WireUsage | null;
  metadata: null;
}

/** Where a content part sits: every part event carries it. */
export interface PartRef {
  response_id: string;
  item_id: string;
  output_index: number;
  content_index: number;
}

/** Server events without `event_id`, which the sender stamps. */
export type ServerEventBody =
  | { type: 'error'; error: ErrorBody }
  | { type: 'session.created' | 'session.updated'; session: Record<string, unknown> }
  | { type: 'input_audio_buffer.speech_started'; audio_start_ms: number; item_id: string }
  | { type: 'input_audio_buffer.speech_stopped'; audio_end_ms: number; item_id: string }
  | { type: 'input_audio_buffer.committed'; item_id: string; previous_item_id: string | null }
  | { type: 'input_audio_buffer.cleared' }
  | { type: 'conversation.item.added' | 'conversation.item.done' | 'conversation.item.created'; item: WireItem; previous_item_id: string | null }
  | { type: 'conversation.item.retrieved'; item: WireItem }
  | { type: 'conversation.item.deleted'; item_id: string }
  | { type: 'conversation.item.truncated'; item_id: string; content_index: number; audio_end_ms: number }
  | { type: 'conversation.item.input_audio_transcription.delta'; item_id: string; content_index: number; delta: string }
  | {
      type: 'conversation.item.input_audio_transcription.completed';
      item_id: string;
      content_index: number;
      transcript: string;
      usage: { type: 'tokens'; input_tokens: number; output_tokens: number; total_tokens: number; input_token_details?: { audio_tokens: number; text_tokens: number } };
    }
  | { type: 'conversation.item.input_audio_transcription.failed'; item_id: string; content_index: number; error: ErrorBody }
  | { type: 'response.created' | 'response.done'; response: WireResponse }
  | { type: 'response.output_item.added' | 'response.output_item.done'; response_id: string; output_index: number; item: WireItem }
  | ({ type: 'response.content_part.added' | 'response.content_part.done'; part: { type: 'text'; text: string } | { type: 'audio'; transcript: string } } & PartRef)
  | ({ type: 'response.output_audio.delta' | 'response.audio.delta'; delta: string } & PartRef)
  | ({ type: 'response.output_audio.done' | 'response.audio.done' } & PartRef)
  | ({ type: 'response.output_audio_transcript.delta' | 'response.audio_transcript.delta'; delta: string } & PartRef)
  | ({ type: 'response.output_audio_transcript.done' | 'response.audio_transcript.done'; transcript: string } & PartRef)
  | ({ type: 'response.output_text.delta' | 'response.text.delta'; delta: string } & PartRef)
  | ({ type: 'response.output_text.done' | 'response.text.done'; text: string } & PartRef);
