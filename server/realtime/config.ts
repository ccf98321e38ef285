/**
 * A Realtime session's settings: `session.update` (GA or beta shape) applied to the current
 * settings, and the session object rendered back in the client's dialect.
 */
import { EarshotError } from '../../protocol/errors.js';
import type { InputTranscription, SessionConfig, TurnDetection } from '../../protocol/realtime.js';
import type { Config } from '../config.js';
import type { VadJudging } from '../vad/judging.js';
import type { VoiceStage } from '../voice/stage.js';
import { betaFormat, DEFAULT_FORMAT, formatFromBeta, formatFromGa, gaFormat, type InputFormat } from './audio.js';

/** OpenAI's default turn_detection.threshold, which clients send as it is: here it means the server's tuned default. */
export const REALTIME_DEFAULT_THRESHOLD = 0.5;

export interface VadConfig {
  threshold: number;
  prefixPaddingMs: number;
  silenceMs: number;
  createResponse: boolean;
  interruptResponse: boolean;
  /** Set for semantic_vad (served by the same VAD, the eagerness choosing the silence), so the session reports what was asked. */
  eagerness?: 'low' | 'medium' | 'high' | 'auto';
}

export interface RealtimeSettings {
  /** `transcription`: VAD and transcripts only, never a response (`?intent=transcription` or session.type). */
  kind: 'realtime' | 'transcription';
  /** Input transcription of each user audio item; null = off. */
  transcription: InputTranscription | null;
  instructions: string;
  format: InputFormat;
  /** null: manual turns (the client commits and asks for responses). */
  vad: VadConfig | null;
  maxOutputTokens: number | 'inf';
  temperature: number;
  /** Responses are spoken (with their transcript) or text; OpenAI's default is audio. */
  output: 'audio' | 'text';
  /** Format of response audio (the same kinds as input). */
  outputFormat: InputFormat;
  /** The voice as the client named it (OpenAI names map onto the TTS engine's voices). */
  voice: string;
  /** Speaking rate of responses (0.25-1.5, 1 = the voice's own), asked of the TTS engine; taken when a response starts. */
  speed: number;
}


/** Silence that ends a turn for each semantic_vad eagerness (served by the same WebRTC VAD). */
const EAGERNESS_SILENCE_MS = { low: 1000, medium: 500, auto: 500, high: 300 } as const;

/** `voice`: the server's voice stage; without one (--tts none) responses are text. */
export function defaultSettings(config: Config, voice: VoiceStage | undefined, kind: RealtimeSettings['kind'] = 'realtime'): RealtimeSettings {
  return {
    kind,
    // A transcription session is there for its transcripts: on from the start.
    transcription: kind === 'transcription' ? {} : null,
    output: voice ? 'audio' : 'text',
    outputFormat: DEFAULT_FORMAT,
    voice: voice?.defaultVoice ?? 'alloy',
    speed: 1,
    instructions: '',
    format: DEFAULT_FORMAT,
    vad: {
      threshold: REALTIME_DEFAULT_THRESHOLD,
      prefixPaddingMs: config.vadPrefixPaddingMs,
      silenceMs: config.vadSilenceMs,
      createResponse: true,
      interruptResponse: config.bargeIn,
    },
    maxOutputTokens: 'inf',
    temperature: config.temperature,
  };
}

/**
 * Realtime's turn_detection.threshold (0-1, higher = needs more certain speech) for a session.
 * It is a sensitivity on OpenAI's scale, not a probability of the model Earshot runs: clients
 * send OpenAI's default 0.5 as a matter of course, and Silero v5 at 0.5 takes music after silence
 * for speech. So with Silero (--vad hybrid or silero) 0.5 is --vad-threshold (0.8 for v5), and
 * either side stretches linearly to 0 and 1; WebRTC VAD keeps --vad-aggressiveness. With --vad
 * webrtc it picks the WebRTC mode (vadAggressiveness).
 */
export function vadJudging(config: Config, threshold: number): VadJudging {
  if (config.vad === 'webrtc') return { mode: 'webrtc', aggressiveness: vadAggressiveness(threshold), threshold };
  return { mode: config.vad, aggressiveness: config.vadAggressiveness, threshold: sileroThreshold(config.vadThreshold, threshold) };
}

function sileroThreshold(tuned: number, threshold: number): number {
  const half = REALTIME_DEFAULT_THRESHOLD;
  return threshold <= half ? tuned * (threshold / half) : tuned + (1 - tuned) * ((threshold - half) / (1 - half));
}

/**
 * Realtime's threshold (0-1, higher = needs louder speech) to a WebRTC VAD mode (0-3, higher =
 * stricter). The default, OpenAI's 0.5, maps to mode 3, the mode Earshot's segmentation is tuned and
 * tested with; lower thresholds step down to more sensitive modes.
 */
function vadAggressiveness(threshold: number): number {
  if (threshold >= 0.5) return 3;
  if (threshold >= 0.35) return 2;
  if (threshold >= 0.2) return 1;
  return 0;
}

/**
 * `current` is the turn detection in force (null: manual turns). An omitted interrupt_response
 * keeps the barge-in already chosen, first the server's --barge-in: an update that only tunes
 * the VAD must not switch barge-in back on for a server started without it.
 */
function vadFrom(td: TurnDetection, current: VadConfig | null, config: Config): VadConfig {
  const silence = td.type === 'semantic_vad' ? EAGERNESS_SILENCE_MS[td.eagerness ?? 'auto'] : config.vadSilenceMs;
  return {
    threshold: td.threshold ?? REALTIME_DEFAULT_THRESHOLD,
    prefixPaddingMs: td.prefix_padding_ms ?? config.vadPrefixPaddingMs,
    silenceMs: td.silence_duration_ms ?? silence,
    createResponse: td.create_response ?? true,
    interruptResponse: td.interrupt_response ?? current?.interruptResponse ?? config.bargeIn,
    ...(td.type === 'semantic_vad' ? { eagerness: td.eagerness ?? 'auto' } : {}),
  };
}

export interface UpdateResult {
  settings: RealtimeSettings;
  /** Problems that did not stop the update (audio asked for on a server without a voice; a voice change after audio). */
  warnings: EarshotError[];
}

/** Audio when asked for (GA: ['audio'], which carries its transcript; beta: ['text', 'audio']), as far as the server can speak. */
export function outputOf(modalities: ('text' | 'audio')[], voice: VoiceStage | undefined, param: string, warnings: EarshotError[]): 'audio' | 'text' {
  if (!modalities.includes('audio')) return 'text';
  if (voice) return 'audio';
  warnings.push(new EarshotError('unsupported', 'this server has no voice (--tts none): responses will be text', { param }));
  return 'text';
}

export interface VoiceState {
  stage: VoiceStage | undefined;
  /** The session already spoke: its voice is fixed, as at OpenAI. */
  locked: boolean;
}

/**
 * The voice a session.update or response.create asks for, `current` when it names none. An
 * unknown name throws (listing the voices); a change once the session has spoken is a warning
 * and `current` stays, as at OpenAI.
 */
export function chooseVoice(current: string, requested: string | undefined, param: string, voice: VoiceState, warnings: EarshotError[]): string {
  if (requested === undefined || requested === current) return current;
  if (voice.locked) {
    warnings.push(new EarshotError('bad_message', 'the voice cannot change once the session has spoken', { param }));
    return current;
  }
  voice.stage?.resolveVoice(requested, param);
  return requested;
}

/** Applies an update; throws (leaving the settings untouched) when a field cannot be served. */
export function applyUpdate(current: RealtimeSettings, update: SessionConfig, config: Config, voice: VoiceState): UpdateResult {
  const next: RealtimeSettings = { ...current };
  const warnings: EarshotError[] = [];
  const modalities = update.output_modalities ?? update.modalities;
  if (modalities) next.output = outputOf(modalities, voice.stage, update.output_modalities ? 'session.output_modalities' : 'session.modalities', warnings);
  const outputFormat = update.audio?.output?.format;
  if (outputFormat) next.outputFormat = formatFromGa(outputFormat, 'session.audio.output.format');
  else if (update.output_audio_format !== undefined) next.outputFormat = formatFromBeta(update.output_audio_format, 'session.output_audio_format');
  const voiceParam = update.audio?.output?.voice !== undefined ? 'session.audio.output.voice' : 'session.voice';
  next.voice = chooseVoice(current.voice, update.audio?.output?.voice ?? update.voice, voiceParam, voice, warnings);
  const speed = update.audio?.output?.speed ?? update.speed;
  if (speed !== undefined) next.speed = speed;
  if (update.instructions !== undefined) next.instructions = update.instructions;
  if (update.type !== undefined) next.kind = update.type;
  const transcription = update.audio?.input?.transcription !== undefined ? update.audio.input.transcription : update.input_audio_transcription;
  if (transcription !== undefined) next.transcription = transcription;
  const gaFormatUpdate = update.audio?.input?.format;
  if (gaFormatUpdate) next.format = formatFromGa(gaFormatUpdate);
  else if (update.input_audio_format !== undefined) next.format = formatFromBeta(update.input_audio_format);
  const td = update.audio?.input?.turn_detection !== undefined ? update.audio.input.turn_detection : update.turn_detection;
  if (td !== undefined) next.vad = td === null ? null : vadFrom(td, current.vad, config);
  const maxTokens = update.max_output_tokens ?? update.max_response_output_tokens;
  if (maxTokens !== undefined) next.maxOutputTokens = maxTokens;
  if (update.temperature !== undefined) next.temperature = update.temperature;
  return { settings: next, warnings };
}

function turnDetection(vad: VadConfig | null): Record<string, unknown> | null {
  if (!vad) return null;
  if (vad.eagerness) return { type: 'semantic_vad', eagerness: vad.eagerness, create_response: vad.createResponse, interrupt_response: vad.interruptResponse };
  return {
    type: 'server_vad',
    threshold: vad.threshold,
    prefix_padding_ms: vad.prefixPaddingMs,
    silence_duration_ms: vad.silenceMs,
    create_response: vad.createResponse,
    interrupt_response: vad.interruptResponse,
    idle_timeout_ms: null,
  };
}

/** The transcription settings as OpenAI shows them; the served model transcribes, whatever `model` was asked. */
function renderTranscription(t: InputTranscription | null, model: string): Record<string, unknown> | null {
  if (!t) return null;
  return { model, language: t.language ?? null, prompt: t.prompt ?? '' };
}

export function renderSession(s: RealtimeSettings, ids: { id: string; model: string }, beta: boolean): Record<string, unknown> {
  const transcription = renderTranscription(s.transcription, ids.model);
  if (s.kind === 'transcription' && !beta)
    return {
      type: 'transcription',
      id: ids.id,
      object: 'realtime.transcription_session',
      audio: { input: { format: gaFormat(s.format), transcription, noise_reduction: null, turn_detection: turnDetection(s.vad) } },
      include: null,
    };
  const common = { id: ids.id, object: 'realtime.session', model: ids.model, instructions: s.instructions, temperature: s.temperature, tools: [], tool_choice: 'auto' };
  if (beta)
    return {
      ...common,
      modalities: s.output === 'audio' ? ['text', 'audio'] : ['text'],
      voice: s.voice,
      speed: s.speed,
      input_audio_format: betaFormat(s.format),
      output_audio_format: betaFormat(s.outputFormat),
      input_audio_transcription: transcription,
      turn_detection: turnDetection(s.vad),
      max_response_output_tokens: s.maxOutputTokens,
    };
  return {
    type: 'realtime',
    ...common,
    output_modalities: [s.output],
    audio: {
      input: { format: gaFormat(s.format), transcription, noise_reduction: null, turn_detection: turnDetection(s.vad) },
      output: { format: gaFormat(s.outputFormat), voice: s.voice, speed: s.speed },
    },
    max_output_tokens: s.maxOutputTokens,
    tracing: null,
  };
}
