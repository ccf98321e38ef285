/**
 * OpenAI chat messages → the engine's Message/Part: text as is, `input_audio` decoded to
 * 16 kHz mono, `image_url` as bytes (data URLs only: the server never fetches a URL a
 * client names). Every rejection names the offending field in `param`.
 */
import { EarshotError } from '../../protocol/errors.js';
import type { ChatMessage, ContentPart } from '../../protocol/openai.js';
import { decodeClip } from '../audio/clip.js';
import { SAMPLE_RATE, type Pcm16k } from '../audio/format.js';
import { audioMsOf, type Message, type ModelInfo, type Part } from '../engines/types.js';
import { checkRequestAudio } from './request-audio.js';

export type LongAudio = 'reject' | 'split';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const DATA_URL = /^data:([^;,]*)(?:;[^,]*)?;base64,/;

/** Strict base64 (whitespace from line-wrapping tools allowed); Buffer.from alone would silently skip garbage. */
function base64Bytes(data: string, param: string): Buffer {
  const text = data.replace(DATA_URL, '').replace(/\s+/g, '');
  if (text.length % 4 !== 0 || !BASE64.test(text)) throw new EarshotError('bad_message', 'data is not valid base64', { param });
  return Buffer.from(text, 'base64');
}

export function withParam(err: unknown, param: string): EarshotError {
  const error = EarshotError.from(err);
  return error.code === 'internal' ? error : new EarshotError(error.code, error.message, { param, cause: err });
}

async function audioParts(part: Extract<ContentPart, { type: 'input_audio' }>, param: string, model: ModelInfo, longAudio: LongAudio): Promise<Part[]> {
  if (!model.inputs.audio) throw new EarshotError('unsupported', `model '${model.id}' does not accept audio`, { param });
  const bytes = base64Bytes(part.input_audio.data, `${param}.input_audio.data`);
  // `format` is a label, not a fact: the bytes say what the clip is.
  const samples = await decodeClip(bytes).catch((err: unknown) => {
    throw withParam(err, `${param}.input_audio.data`);
  });
  return clipParts(samples, model, longAudio, `${param}.input_audio.data`);
}

/** Decoded audio as parts the model accepts: one clip, or several of at most `maxAudioMs` when splitting. */
export function clipParts(samples: Pcm16k, model: ModelInfo, longAudio: LongAudio, param: string): Part[] {
  if (samples.length === 0) throw new EarshotError('bad_audio', 'the audio clip is empty', { param });
  const limit = Math.floor((model.maxAudioMs * SAMPLE_RATE) / 1000);
  if (samples.length <= limit) return [{ type: 'audio', samples }];
  if (longAudio === 'reject') {
    const ms = Math.round((samples.length * 1000) / SAMPLE_RATE);
    throw new EarshotError('limit_exceeded', `audio clip is ${ms} ms; model '${model.id}' accepts at most ${model.maxAudioMs} ms per clip (send shorter clips, or start the server with --rest-long-audio split)`, { param });
  }
  const parts: Part[] = [];
  for (let at = 0; at < samples.length; at += limit) parts.push({ type: 'audio', samples: samples.subarray(at, at + limit) });
  return parts;
}

function imagePart(part: Extract<ContentPart, { type: 'image_url' }>, param: string, model: ModelInfo): Part {
  if (!model.inputs.image) throw new EarshotError('unsupported', `model '${model.id}' does not accept images`, { param });
  const url = part.image_url.url;
  const mime = DATA_URL.exec(url)?.[1];
  if (!mime?.startsWith('image/')) throw new EarshotError('unsupported', 'image_url must be a data:image/...;base64, URL; the server does not fetch remote images', { param: `${param}.image_url.url` });
  return { type: 'image', bytes: base64Bytes(url, `${param}.image_url.url`), mime };
}

async function partsOf(content: ChatMessage['content'], param: string, model: ModelInfo, longAudio: LongAudio): Promise<Part[]> {
  if (content === null || content === undefined) return [];
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  const parts: Part[] = [];
  for (const [j, part] of content.entries()) {
    const at = `${param}[${j}]`;
    if (part.type === 'text') parts.push({ type: 'text', text: part.text });
    else if (part.type === 'input_audio') parts.push(...(await audioParts(part, at, model, longAudio)));
    else parts.push(imagePart(part, at, model));
  }
  return parts;
}

export async function toMessages(messages: ChatMessage[], model: ModelInfo, longAudio: LongAudio, maxRequestAudioMs: number): Promise<Message[]> {
  const out: Message[] = [];
  let audioMs = 0;
  for (const [i, message] of messages.entries()) {
    // OpenAI's newer name for the system role; engines know only `system`.
    const role = message.role === 'developer' ? 'system' : message.role;
    const parts = await partsOf(message.content, `messages[${i}].content`, model, longAudio);
    audioMs += audioMsOf(parts);
    checkRequestAudio(audioMs, maxRequestAudioMs, 'messages');
    out.push({ role, parts });
  }
  return out;
}
