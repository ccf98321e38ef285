/**
 * Chat completions with spoken output, as OpenAI's audio models answer `modalities:
 * ['text', 'audio']` + `audio: {voice, format}`: the reply's text goes to the voice stage as it
 * streams, and comes back as `message.audio {id, data, transcript, expires_at}` (content null),
 * or, streamed, as `delta.audio` chunks carrying transcript pieces and base64 pcm16 as each is
 * made. If the voice stage fails, the text still arrives (as content, or as the transcript
 * already streamed) and the failure is logged and, when streaming, sent as an error event.
 */
import { randomUUID } from 'node:crypto';
import { EarshotError } from '../../protocol/errors.js';
import type { ChatCompletionRequest } from '../../protocol/openai.js';
import type { ServerContext } from '../context.js';
import type { TurnEvent } from '../engines/types.js';
import type { Logger } from '../observability/log.js';
import type { TurnSink } from '../scheduler/scheduler.js';
import type { HttpResponse } from '../transport/types.js';
import { createSpeechEncoder, type SpeechFormat } from '../voice/formats.js';
import type { EncodingThread } from '../voice/encoding/threads.js';
import type { Pcm24k, SpokenReply } from '../voice/types.js';
import { chunkOf, cutShort, usageOf, type Reply } from './chat.js';
import { errorOf, sendError, sendJson } from './respond.js';
import { voiceStage } from './speech.js';
import { SseStream } from './sse.js';

/** How long a client may refer back to a reply's audio (OpenAI gives an hour too). */
const AUDIO_TTL_S = 3600;

export interface SpokenOutput {
  reply: SpokenReply;
  format: SpeechFormat;
  id: string;
  /** Where Opus is encoded (the voice stage's thread). */
  encoding: EncodingThread;
}

/** The spoken output a request asks for, checked at the edge; undefined for text only. */
export function spokenOutput(ctx: ServerContext, body: ChatCompletionRequest, signal: AbortSignal): SpokenOutput | undefined {
  if (!body.modalities?.includes('audio')) {
    if (body.audio) throw new EarshotError('bad_message', "audio output needs modalities: ['text', 'audio']", { param: 'modalities' });
    return undefined;
  }
  if (!body.audio) throw new EarshotError('bad_message', 'audio output needs audio: {voice, format}', { param: 'audio' });
  const stage = voiceStage(ctx, 'modalities');
  const voice = stage.resolveVoice(body.audio.voice, 'audio.voice');
  if (body.stream && body.audio.format !== 'pcm16') throw new EarshotError('bad_message', `streamed audio output supports pcm16 only, not ${body.audio.format}`, { param: 'audio.format' });
  const format = body.audio.format === 'pcm16' ? 'pcm' : body.audio.format;
  return { reply: stage.reply(voice, signal), format, id: `audio_${randomUUID().replace(/-/g, '')}`, encoding: stage.encoding };
}

const expiresAt = () => Math.floor(Date.now() / 1000) + AUDIO_TTL_S;

/** Reads a reply's audio as it is made (so synthesis runs while the text still streams). */
async function gather(reply: SpokenReply): Promise<Pcm24k[]> {
  const chunks: Pcm24k[] = [];
  for await (const chunk of reply.audio()) chunks.push(chunk);
  return chunks;
}

async function encodeWhole(chunks: Pcm24k[], spoken: SpokenOutput): Promise<string> {
  const encoder = createSpeechEncoder(spoken.format, spoken.encoding, chunks.reduce((n, c) => n + c.length, 0));
  try {
    const parts = [encoder.start(), ...(await Promise.all(chunks.map((c) => encoder.encode(c)))), await encoder.end()];
    return Buffer.concat(parts).toString('base64');
  } finally {
    encoder.close();
  }
}

export function wholeAudioSink(res: HttpResponse, reply: Reply, spoken: SpokenOutput, logger: Logger): TurnSink {
  let transcript = '';
  const audio = gather(spoken.reply);
  const answer = async (event: Extract<TurnEvent, { type: 'done' }>) => {
    spoken.reply.end();
    const chunks = await audio;
    if (res.aborted) return;
    const data = spoken.reply.failed
      ? undefined
      : await encodeWhole(chunks, spoken).catch((err: unknown) => void logger.warn({ err, reply: reply.id }, 'encoding the spoken reply failed; answering with text'));
    if (spoken.reply.failed) logger.warn({ err: spoken.reply.failed, reply: reply.id }, 'spoken reply failed; answering with text');
    const message = data
      ? { role: 'assistant', content: null, refusal: null, audio: { id: spoken.id, data, transcript, expires_at: expiresAt() } }
      : { role: 'assistant', content: transcript, refusal: null, audio: null };
    sendJson(res, 200, {
      id: reply.id,
      object: 'chat.completion',
      created: reply.created,
      model: reply.model,
      choices: [{ index: 0, message, logprobs: null, finish_reason: event.finish }],
      usage: usageOf(event.usage),
    });
  };
  return (event: TurnEvent) => {
    if (res.aborted) return;
    if (event.type === 'delta') {
      transcript += event.text;
      spoken.reply.push(event.text);
    } else if (event.type === 'error' || event.finish === 'cancelled') {
      spoken.reply.end();
      sendError(res, event.type === 'error' ? event.error : cutShort());
    } else void answer(event);
  };
}

/**
 * Text deltas go out as `delta.audio.transcript` at once; audio follows as `delta.audio.data`
 * chunks as the voice stage makes them; the finish chunk waits for the last audio.
 */
export function streamAudioSink(res: HttpResponse, reply: Reply, spoken: SpokenOutput, maxBufferedBytes: number, logger: Logger): TurnSink {
  const sse = new SseStream(res, maxBufferedBytes);
  const open = () => {
    if (!sse.started) sse.send(chunkOf(reply, { role: 'assistant', content: null, refusal: null, audio: { id: spoken.id, transcript: '' } }, null));
  };
  const audioDone = (async () => {
    for await (const pcm of spoken.reply.audio()) {
      if (res.aborted) return;
      open();
      sse.send(chunkOf(reply, { audio: { data: Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength).toString('base64') } }, null));
    }
  })();
  const finish = async (reason: 'stop' | 'length', usage: Extract<TurnEvent, { type: 'done' }>['usage']) => {
    spoken.reply.end();
    await audioDone;
    if (res.aborted) return;
    if (spoken.reply.failed) {
      logger.warn({ err: spoken.reply.failed, reply: reply.id }, 'spoken reply failed; the transcript was sent');
      return sse.fail(errorOf(spoken.reply.failed));
    }
    sse.send(chunkOf(reply, { audio: { expires_at: expiresAt() } }, null));
    sse.send(chunkOf(reply, {}, reason));
    if (reply.includeUsage) sse.send({ id: reply.id, object: 'chat.completion.chunk', created: reply.created, model: reply.model, choices: [], usage: usageOf(usage) });
    sse.done();
  };
  return (event: TurnEvent) => {
    if (res.aborted) return;
    const failure = event.type === 'error' ? event.error : event.type === 'done' && event.finish === 'cancelled' ? cutShort() : undefined;
    if (failure) spoken.reply.end();
    if (failure && !sse.started) return sendError(res, failure);
    if (failure) return sse.fail(errorOf(failure));
    open();
    if (event.type === 'delta') {
      spoken.reply.push(event.text);
      return sse.send(chunkOf(reply, { audio: { transcript: event.text } }, null));
    }
    if (event.type === 'done' && event.finish !== 'cancelled') void finish(event.finish, event.usage);
  };
}
