/**
 * POST /v1/audio/transcriptions in OpenAI's shape: the uploaded file becomes one turn with a
 * transcription instruction, on the same scheduler and engine as every other turn.
 */
import { randomUUID } from 'node:crypto';
import { EarshotError } from '../../protocol/errors.js';
import { describeIssue, TranscriptionRequest } from '../../protocol/openai.js';
import { decodeClip, type ClipFormat } from '../audio/clip.js';
import type { ServerContext } from '../context.js';
import { SAMPLE_RATE, type TurnRequest } from '../engines/types.js';
import { checkRequestAudio } from '../limits/audio.js';
import type { HttpRequest, HttpResponse } from '../transport/types.js';
import { clipParts, withParam } from './chat-input.js';
import { parseMultipart } from './multipart.js';
import { sendError, sendJson } from './respond.js';
import { requireKey } from './service.js';

const INSTRUCTION = 'Transcribe the speech in the audio verbatim. Reply with the transcript only, without comments.';

/** By content, not by name or declared type: clients label files loosely. */
function sniffFormat(bytes: Buffer): ClipFormat {
  if (bytes.toString('latin1', 0, 4) === 'RIFF' && bytes.toString('latin1', 8, 12) === 'WAVE') return 'wav';
  if (bytes.toString('latin1', 0, 3) === 'ID3' || (bytes[0] === 0xff && (bytes[1]! & 0xe0) === 0xe0)) return 'mp3';
  throw new EarshotError('unsupported', 'file must be WAV or MP3', { param: 'file' });
}

function instruction(request: TranscriptionRequest): string {
  const language = request.language ? ` The speech is in language '${request.language}'.` : '';
  const context = request.prompt ? ` Context (earlier speech or spellings): ${request.prompt}` : '';
  return INSTRUCTION + language + context;
}

export async function transcription(ctx: ServerContext, req: HttpRequest, res: HttpResponse): Promise<void> {
  const readyAt = performance.now();
  requireKey(ctx, req);
  if (ctx.draining()) throw new EarshotError('shutting_down', 'server is shutting down', { retryable: true });
  const controller = new AbortController();
  res.onAbort(() => controller.abort());
  const form = parseMultipart(await req.body(ctx.config.maxBodyBytes), req.headers['content-type']);
  const file = form.find((p) => p.name === 'file');
  if (!file) throw new EarshotError('bad_message', 'file: a file part is required', { param: 'file' });
  const parsed = TranscriptionRequest.safeParse(Object.fromEntries(form.filter((p) => p.filename === undefined).map((p) => [p.name, p.data.toString('utf8')])));
  if (!parsed.success) {
    const { param, message } = describeIssue(parsed.error);
    throw new EarshotError('bad_message', `${param}: ${message}`, { param });
  }
  const request = parsed.data;
  const model = ctx.engine.models().find((m) => m.id === request.model);
  if (!model) throw new EarshotError('not_found', `model '${request.model}' does not exist; GET /v1/models lists the served ones`, { param: 'model' });
  if (!model.inputs.audio) throw new EarshotError('unsupported', `model '${model.id}' does not accept audio`, { param: 'model' });
  const samples = await decodeClip(file.data, sniffFormat(file.data)).catch((err: unknown) => {
    throw withParam(err, 'file');
  });
  checkRequestAudio((samples.length * 1000) / SAMPLE_RATE, ctx.config.maxRequestAudioMs, 'file');
  const parts = clipParts(samples, model, ctx.config.restLongAudio, 'file');
  if (controller.signal.aborted) return;
  const id = `transcribe-${randomUUID()}`;
  const turn: TurnRequest = {
    id,
    sessionId: `rest:${id}`,
    messages: [
      { role: 'system', parts: [{ type: 'text', text: instruction(request) }] },
      { role: 'user', parts },
    ],
    params: { maxTokens: ctx.config.maxTokens, temperature: request.temperature ?? 0 },
    signal: controller.signal,
    readyAt,
  };
  let text = '';
  ctx.scheduler.submit(turn, (event) => {
    if (res.aborted) return;
    if (event.type === 'delta') text += event.text;
    else if (event.type === 'error') sendError(res, event.error);
    else if (event.finish === 'cancelled') sendError(res, new EarshotError('shutting_down', 'the turn was cancelled by the server before it finished', { retryable: true }));
    else if (request.response_format === 'text') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(text);
    } else {
      const { promptTokens, completionTokens, audioTokens } = event.usage;
      sendJson(res, 200, {
        text: text.trim(),
        usage: {
          type: 'tokens',
          input_tokens: promptTokens,
          output_tokens: completionTokens,
          total_tokens: promptTokens + completionTokens,
          ...(audioTokens !== undefined ? { input_token_details: { audio_tokens: audioTokens, text_tokens: promptTokens - audioTokens } } : {}),
        },
      });
    }
  });
}
