/**
 * POST /v1/audio/transcriptions in OpenAI's shape: the uploaded file becomes transcription
 * turns on the same scheduler and engine as every other turn. `json` and `text` transcribe
 * the file as one clip, streamed as `transcript.text.*` events when asked; `verbose_json`,
 * `srt` and `vtt` first cut the file into speech segments with the server's VAD and
 * transcribe every segment as its own turn (they batch together), so each has its times.
 */
import { randomUUID } from 'node:crypto';
import { EarshotError } from '../../protocol/errors.js';
import type { Usage } from '../../protocol/native.js';
import { describeIssue, SEGMENTED_FORMATS, TranscriptionRequest, transcriptionUsage } from '../../protocol/openai.js';
import { decodeClip } from '../audio/clip.js';
import { SAMPLE_RATE, type Pcm16k } from '../audio/format.js';
import type { ServerContext } from '../context.js';
import type { ModelInfo, Part, TurnRequest } from '../engines/types.js';
import type { HttpRequest, HttpResponse } from '../transport/types.js';
import { segmentFile } from '../vad/file.js';
import { loadFvad } from '../vad/fvad.js';
import { segmenterFor } from '../vad/judging.js';
import { srt, vtt, type TimedText } from './captions.js';
import { clipParts, withParam } from './chat-input.js';
import { parseMultipart, type FormPart } from './multipart.js';
import { checkRequestAudio } from './request-audio.js';
import { errorOf, sendJson } from './respond.js';
import type { HttpRoute } from './router.js';
import { requestedModel, requireKey } from './service.js';
import { SseStream } from './sse.js';

interface Transcribed {
  text: string;
  usage: Usage;
}

/** What every transcription turn of one request shares. */
interface Job {
  ctx: ServerContext;
  request: TranscriptionRequest;
  id: string;
  signal: AbortSignal;
  readyAt: number;
}

/** Form fields as the schema reads them: repeated `name[]` fields become one list. */
function formFields(form: FormPart[]): Record<string, string | string[]> {
  const fields: Record<string, string | string[]> = {};
  for (const part of form) {
    if (part.filename !== undefined) continue;
    const value = part.data.toString('utf8');
    if (part.name.endsWith('[]')) fields[part.name] = [...((fields[part.name] as string[] | undefined) ?? []), value];
    else fields[part.name] = value;
  }
  return fields;
}

/** One transcription turn; resolves with its text, rejects with the EarshotError that ended it. */
function transcribe(job: Job, parts: Part[], turnId: string, onDelta?: (text: string) => void): Promise<Transcribed> {
  const { request, ctx } = job;
  const turn: TurnRequest = {
    id: turnId,
    // Each clip is independent (no shared history), so segments of one file may share a batch; --max-request-audio-ms bounds how many.
    sessionId: `rest:${turnId}`,
    door: 'rest',
    kind: 'transcribe',
    hints: { ...(request.language ? { language: request.language } : {}), ...(request.prompt ? { prompt: request.prompt } : {}) },
    messages: [{ role: 'user', parts }],
    params: { maxTokens: ctx.config.maxTokens, temperature: request.temperature ?? 0 },
    signal: job.signal,
    readyAt: job.readyAt,
  };
  return new Promise((resolve, reject) => {
    let text = '';
    ctx.scheduler.submit(turn, (event) => {
      if (event.type === 'delta') {
        text += event.text;
        onDelta?.(event.text);
      } else if (event.type === 'error') reject(event.error);
      else if (event.finish === 'cancelled') reject(new EarshotError('shutting_down', 'the transcription was cancelled by the server before it finished', { retryable: true }));
      else resolve({ text: text.trim(), usage: event.usage });
    });
  });
}

async function whole(job: Job, res: HttpResponse, parts: Part[]): Promise<void> {
  const { text, usage } = await transcribe(job, parts, job.id);
  if (res.aborted) return;
  if (job.request.response_format === 'text') {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(text);
  } else sendJson(res, 200, { text, usage: transcriptionUsage(usage) });
}

/**
 * `transcript.text.delta` per piece, then `transcript.text.done` with the text and usage, and
 * no `[DONE]`, as OpenAI streams it. Headers wait for the first piece, so an error before any
 * text is still a JSON error with its status; a later one is an `error` event.
 */
async function streamed(job: Job, res: HttpResponse, parts: Part[]): Promise<void> {
  const sse = new SseStream(res, job.ctx.config.maxBufferedBytes);
  const send = (event: unknown) => {
    if (!res.aborted) sse.send(event);
  };
  let result: Transcribed;
  try {
    result = await transcribe(job, parts, job.id, (delta) => send({ type: 'transcript.text.delta', delta }));
  } catch (err) {
    if (!sse.started) throw err;
    if (!res.aborted) sse.fail(errorOf(EarshotError.from(err)));
    return;
  }
  if (res.aborted) return;
  sse.send({ type: 'transcript.text.done', text: result.text, usage: transcriptionUsage(result.usage) });
  sse.end();
}

async function segmented(job: Job, res: HttpResponse, samples: Pcm16k, model: ModelInfo): Promise<void> {
  const { ctx, request } = job;
  const { config } = ctx;
  const fvad = await loadFvad();
  const settings = {
    prefixPaddingMs: config.vadPrefixPaddingMs,
    silenceMs: config.vadSilenceMs,
    minSpeechMs: config.vadMinSpeechMs,
    maxUtteranceMs: Math.min(config.maxUtteranceMs, model.maxAudioMs),
  };
  const judging = { mode: config.vad, aggressiveness: config.vadAggressiveness, threshold: config.vadThreshold };
  const speech = await segmentFile((emit) => segmenterFor(fvad, judging, settings, ctx.confirmer, emit), samples);
  const texts = await Promise.all(speech.map((s, i) => transcribe(job, [{ type: 'audio', samples: s.audio }], `${job.id}-${i}`)));
  if (res.aborted) return;
  const segments: TimedText[] = speech.map((s, i) => ({ startMs: s.startMs, endMs: s.endMs, text: texts[i]!.text }));
  if (request.response_format === 'srt' || request.response_format === 'vtt') {
    res.writeHead(200, { 'content-type': `${request.response_format === 'vtt' ? 'text/vtt' : 'text/plain'}; charset=utf-8` });
    res.end(request.response_format === 'vtt' ? vtt(segments) : srt(segments));
    return;
  }
  const duration = samples.length / SAMPLE_RATE;
  sendJson(res, 200, {
    task: 'transcribe',
    language: request.language ?? 'unknown',
    duration,
    text: segments.map((s) => s.text).join(' '),
    // The engine reports no token details: tokens stay empty and the scores neutral. `seek` is the start in 10 ms steps.
    segments: segments.map((s, id) => ({
      id,
      seek: Math.round(s.startMs / 10),
      start: s.startMs / 1000,
      end: s.endMs / 1000,
      text: s.text,
      tokens: [],
      temperature: request.temperature ?? 0,
      avg_logprob: 0,
      compression_ratio: 0,
      no_speech_prob: 0,
    })),
    usage: { type: 'duration', seconds: Math.ceil(duration) },
  });
}

export function transcriptionRoutes(ctx: ServerContext): HttpRoute[] {
  return [{ method: 'POST', path: '/v1/audio/transcriptions', handle: (req, res) => transcription(ctx, req, res) }];
}

async function transcription(ctx: ServerContext, req: HttpRequest, res: HttpResponse): Promise<void> {
  const readyAt = performance.now();
  requireKey(ctx, req);
  if (ctx.draining()) throw new EarshotError('shutting_down', 'server is shutting down', { retryable: true });
  const controller = new AbortController();
  res.onAbort(() => controller.abort());
  const form = parseMultipart(await req.body(ctx.config.maxBodyBytes), req.headers['content-type']);
  const file = form.find((p) => p.name === 'file');
  if (!file) throw new EarshotError('bad_message', 'file: a file part is required', { param: 'file' });
  const parsed = TranscriptionRequest.safeParse(formFields(form));
  if (!parsed.success) {
    const { param, message } = describeIssue(parsed.error);
    throw new EarshotError('bad_message', `${param}: ${message}`, { param: param.replace(/\[\]$/, '') });
  }
  const request = parsed.data;
  const model = requestedModel(ctx, request.model);
  if (!model.inputs.audio) throw new EarshotError('unsupported', `model '${model.id}' does not accept audio`, { param: 'model' });
  const samples = await decodeClip(file.data).catch((err: unknown) => {
    throw withParam(err, 'file');
  });
  checkRequestAudio((samples.length * 1000) / SAMPLE_RATE, ctx.config.maxRequestAudioMs, 'file');
  const job: Job = { ctx, request, id: `transcribe-${randomUUID()}`, signal: controller.signal, readyAt };
  try {
    if (SEGMENTED_FORMATS.includes(request.response_format)) return await segmented(job, res, samples, model);
    const parts = clipParts(samples, model, ctx.config.restLongAudio, 'file');
    if (controller.signal.aborted) return;
    await (request.stream ? streamed(job, res, parts) : whole(job, res, parts));
  } finally {
    // A failed segment (or a full queue midway) leaves the others nothing to answer: stop them.
    controller.abort();
  }
}
