/**
 * Native Earshot protocol on /v1/stream: msgpack maps in binary WebSocket frames.
 * Audio may also be sent as a raw binary frame whose first byte is RAW_AUDIO_TAG (0x00)
 * followed by the codec payload: a msgpack control message is always a map, so its
 * first byte is never 0x00, and the server reads the audio as a view without decoding.
 */
import { z } from 'zod';

export const PROTOCOL_VERSION = 1;
export const RAW_AUDIO_TAG = 0x00;

export const OPUS_RATES = [8000, 12000, 16000, 24000, 48000] as const;
export const PCM_RATES = [8000, 16000, 24000, 48000] as const;

export const VadSettings = z
  .object({
    aggressiveness: z.number().int().min(0).max(3),
    prefixPaddingMs: z.number().int().min(0).max(2000),
    silenceMs: z.number().int().min(100).max(5000),
    minSpeechMs: z.number().int().min(0).max(5000),
    maxUtteranceMs: z.number().int().min(1000).max(120_000),
    bargeIn: z.boolean(),
    /** false = manual turns: only `commit` ends an utterance. */
    enabled: z.boolean(),
  })
  .partial()
  .strict();
export type VadSettings = z.infer<typeof VadSettings>;

export const GenerationParams = z
  .object({
    maxTokens: z.number().int().min(1).max(32_768),
    temperature: z.number().min(0).max(2),
    topP: z.number().gt(0).max(1),
    stop: z.array(z.string().max(64)).max(4),
  })
  .partial()
  .strict();
export type GenerationParams = z.infer<typeof GenerationParams>;

/** Spoken replies: 20 ms Opus packets or PCM16 frames at `sampleRate` (default 24000, the voice stage's own rate). */
export const VoiceRequest = z
  .object({
    /** A voice of the server's TTS engine, or one of OpenAI's names (mapped to an available voice); default: the server's `--voice`. */
    name: z.string().min(1).max(64).optional(),
    codec: z.enum(['opus', 'pcm16']),
    sampleRate: z.number().int().optional(),
    /** Speaking rate, 1 = the voice's own; the bounds of OpenAI's speech API. */
    speed: z.number().min(0.25).max(4).optional(),
    /** true: audio comes as raw binary frames (RAW_AUDIO_TAG + payload) belonging to the current turn, instead of msgpack `audio` messages. */
    raw: z.boolean().optional(),
  })
  .strict();
export type VoiceRequest = z.infer<typeof VoiceRequest>;

/** Asks for `transcript` messages: the user's words of each audio turn. Hints help the model. */
export const TranscriptionSettings = z
  .object({ language: z.string().min(2).max(16), prompt: z.string().max(4096) })
  .partial()
  .strict();

export const Hello = z
  .object({
    type: z.literal('hello'),
    version: z.number().int().min(1).optional(),
    token: z.string().max(512).optional(),
    codec: z.enum(['opus', 'pcm16']),
    sampleRate: z.number().int(),
    channels: z.union([z.literal(1), z.literal(2)]).optional(),
    vad: VadSettings.optional(),
    system: z.string().max(16_384).optional(),
    params: GenerationParams.optional(),
    voice: VoiceRequest.optional(),
    /** true or hints: each audio turn also gets a `transcript` message. */
    transcribe: z.union([z.boolean(), TranscriptionSettings]).optional(),
  })
  .strict();

export const Audio = z.object({ type: z.literal('audio'), seq: z.number().int().min(0).optional(), data: z.instanceof(Uint8Array) }).strict();
/** `ack`: answer with `committed` once every packet sent before the commit has been judged and its utterance, if any, announced (Silero verdicts and audio threads answer later than a websocket ping). */
export const Commit = z.object({ type: z.literal('commit'), ack: z.boolean().optional() }).strict();
export const Text = z.object({ type: z.literal('text'), text: z.string().min(1).max(16_384) }).strict();
export const Cancel = z.object({ type: z.literal('cancel') }).strict();
export const Bye = z.object({ type: z.literal('bye') }).strict();
/** The client stopped playing a turn's audio after `audioEndMs`: the server keeps only the reply text heard so far. */
export const Truncate = z.object({ type: z.literal('truncate'), turnId: z.string().min(1).max(256), audioEndMs: z.number().int().min(0) }).strict();

export const ClientMessage = z.discriminatedUnion('type', [Hello, Audio, Commit, Text, Cancel, Bye, Truncate]);
export type ClientMessage = z.infer<typeof ClientMessage>;
export type HelloMessage = z.infer<typeof Hello>;

// Server → client. The server builds these from its own typed state; clients validate them
// at their edge (decodeServerMessage), so a client never trusts a malformed frame.

export const Usage = z.object({
  promptTokens: z.number().int().nonnegative(),
  completionTokens: z.number().int().nonnegative(),
  /** Audio tokens inside promptTokens, where the engine reports them. */
  audioTokens: z.number().int().nonnegative().optional(),
});
export type Usage = z.infer<typeof Usage>;

export const FinishReason = z.enum(['stop', 'length', 'cancelled', 'error']);
export type FinishReason = z.infer<typeof FinishReason>;

export const SessionLimits = z.object({
  maxMessageBytes: z.number(),
  maxUtteranceMs: z.number(),
  maxHistoryTurns: z.number(),
  idleTimeoutMs: z.number(),
});
export type SessionLimits = z.infer<typeof SessionLimits>;

/** The voice the server speaks replies with, as it settled `hello.voice`. */
export const VoiceSettings = z.object({ name: z.string(), codec: z.enum(['opus', 'pcm16']), sampleRate: z.number().int(), frameMs: z.number(), raw: z.boolean(), speed: z.number() });
export type VoiceSettings = z.infer<typeof VoiceSettings>;

export const ServerMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('ready'),
    version: z.number().int(),
    sessionId: z.string(),
    transport: z.string(),
    engine: z.string(),
    testEngine: z.boolean(),
    limits: SessionLimits,
    /** Present when replies are spoken (hello asked for a voice and the server has a TTS engine). */
    voice: VoiceSettings.optional(),
  }),
  z.object({ type: z.literal('vad'), state: z.enum(['speech', 'silence']), atMs: z.number() }),
  z.object({ type: z.literal('turn'), turnId: z.string(), source: z.enum(['audio', 'text']), audioMs: z.number(), startMs: z.number().optional(), endMs: z.number().optional(), text: z.string().optional() }),
  z.object({ type: z.literal('delta'), turnId: z.string(), text: z.string() }),
  /** One frame of the turn's spoken reply (an Opus packet, or PCM16 LE); `done` follows the last. */
  z.object({ type: z.literal('audio'), turnId: z.string(), seq: z.number().int().nonnegative(), data: z.instanceof(Uint8Array) }),
  z.object({ type: z.literal('truncated'), turnId: z.string(), audioEndMs: z.number(), text: z.string() }),
  /** The user's words in the turn's audio (hello asked for them); on failure `text` is empty and `error` says why. */
  z.object({ type: z.literal('transcript'), turnId: z.string(), text: z.string(), error: z.object({ code: z.string(), message: z.string() }).optional() }),
  z.object({ type: z.literal('done'), turnId: z.string(), usage: Usage, finish: FinishReason }),
  z.object({ type: z.literal('error'), code: z.string(), message: z.string(), fatal: z.boolean(), turnId: z.string().optional(), retryable: z.boolean().optional() }),
  z.object({ type: z.literal('busy'), retryAfterMs: z.number(), turnId: z.string().optional() }),
  /** A `commit {ack: true}` is complete: what was sent before it has been judged, and its turn, if any, announced. */
  z.object({ type: z.literal('committed') }),
]);
export type ServerMessage = z.infer<typeof ServerMessage>;

