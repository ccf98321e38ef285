/**
 * POST /v1/audio/speech in OpenAI's shape: text in, speech out in the asked format, streamed as
 * it is made (`stream_format: audio`, chunked bytes) or as server-sent events
 * (`speech.audio.delta` with base64 audio, then `speech.audio.done`). Synthesis happens in the
 * voice stage, never on the event loop. Headers wait for the first audio, so a failure before
 * any sound still gets OpenAI's error JSON and status; a client that stops reading is dropped
 * like any slow reader, which aborts the synthesis.
 */
import { EarshotError } from '../../protocol/errors.js';
import { SpeechRequest } from '../../protocol/openai.js';
import type { ServerContext } from '../context.js';
import type { HttpRequest, HttpResponse } from '../transport/types.js';
import { createSpeechEncoder } from '../voice/formats.js';
import type { VoiceStage } from '../voice/stage.js';
import { parseJsonBody } from './chat.js';
import { errorOf } from './respond.js';
import type { HttpRoute } from './router.js';
import { requireKey } from './service.js';
import { SseStream } from './sse.js';

export function speechRoutes(ctx: ServerContext): HttpRoute[] {
  return [{ method: 'POST', path: '/v1/audio/speech', handle: (req, res) => speech(ctx, req, res) }];
}

/** The voice stage, or the error a client gets when the server was started with --tts none. */
export function voiceStage(ctx: ServerContext, param: string): VoiceStage {
  if (ctx.voice) return ctx.voice;
  throw new EarshotError('unsupported', 'this server does not speak (started with --tts none)', { param });
}

async function speech(ctx: ServerContext, req: HttpRequest, res: HttpResponse): Promise<void> {
  requireKey(ctx, req);
  if (ctx.draining()) throw new EarshotError('shutting_down', 'server is shutting down', { retryable: true });
  const controller = new AbortController();
  res.onAbort(() => controller.abort());
  const body = parseJsonBody(await req.body(ctx.config.maxBodyBytes), SpeechRequest);
  const stage = voiceStage(ctx, 'model');
  if (body.input.length > ctx.config.speechMaxInputChars)
    throw new EarshotError('bad_message', `input is ${body.input.length} characters; the limit is ${ctx.config.speechMaxInputChars}`, { param: 'input' });
  const voice = stage.resolveVoice(typeof body.voice === 'string' ? body.voice : body.voice.id);
  const encoder = createSpeechEncoder(body.response_format, stage.encoding);
  const sse = body.stream_format === 'sse' ? new SseStream(res, ctx.config.maxBufferedBytes) : undefined;
  let opened = false;
  const send = (bytes: Uint8Array) => {
    if (bytes.length === 0 || res.aborted) return;
    if (sse) return sse.send({ type: 'speech.audio.delta', audio: Buffer.from(bytes).toString('base64') });
    if (!opened) {
      opened = true;
      res.writeHead(200, { 'content-type': encoder.contentType, 'cache-control': 'no-cache' });
    }
    res.write(bytes);
    if (res.bufferedBytes > ctx.config.maxBufferedBytes) res.close();
  };
  let started = false;
  try {
    for await (const pcm of stage.speak(body.input, voice, controller.signal, { speed: body.speed })) {
      if (!started) send(encoder.start());
      started = true;
      send(await encoder.encode(pcm));
    }
    if (res.aborted || controller.signal.aborted) return;
    if (!started) throw new EarshotError('bad_message', 'input holds nothing to say (no letters or digits)', { param: 'input' });
    send(await encoder.end());
  } catch (err) {
    if (!started) throw err;
    // Audio already went out: an SSE client gets an error event, a byte stream is cut short so it is not taken as whole.
    ctx.logger.warn({ err }, 'speech failed mid-stream');
    if (sse) sse.fail(errorOf(EarshotError.from(err)));
    else res.close();
    return;
  } finally {
    encoder.close();
  }
  if (sse) {
    sse.send({ type: 'speech.audio.done' });
    res.end();
  } else res.end();
}
