import { EarshotError } from '../../../protocol/errors.js';
import { SAMPLE_RATE } from '../../audio/format.js';
import { encodeWav16 } from '../../audio/wav.js';
import type { Message, TurnParams } from '../types.js';

type ContentPart = { type: 'text'; text: string } | { type: 'input_audio'; input_audio: { data: string; format: 'wav' } };
export type ChatMessage = { role: 'system' | 'assistant'; content: string } | { role: 'user'; content: ContentPart[] };

function userContent(message: Message): ContentPart[] {
  return message.parts.map((part): ContentPart => {
    switch (part.type) {
      case 'text':
        return { type: 'text', text: part.text };
      case 'audio':
        return { type: 'input_audio', input_audio: { data: Buffer.from(encodeWav16(part.samples, SAMPLE_RATE)).toString('base64'), format: 'wav' } };
      case 'image':
        throw new EarshotError('unsupported', 'the openai engine does not forward images');
    }
  });
}

/** Our history as Chat Completions messages: audio travels as base64 16 kHz mono PCM16 WAV, which every `input_audio` server reads. */
export function toChatMessages(messages: Message[]): ChatMessage[] {
  return messages.map((message): ChatMessage => {
    if (message.role === 'user') return { role: 'user', content: userContent(message) };
    // System and assistant turns only ever hold text here; a string is what every upstream accepts.
    const text = message.parts.flatMap((p) => (p.type === 'text' ? [p.text] : [])).join('\n');
    return { role: message.role, content: text };
  });
}

export function requestBody(model: string, messages: Message[], params: TurnParams): string {
  return JSON.stringify({
    model,
    messages: toChatMessages(messages),
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: params.maxTokens,
    temperature: params.temperature,
    ...(params.topP === undefined ? {} : { top_p: params.topP }),
    ...(params.stop && params.stop.length > 0 ? { stop: params.stop } : {}),
    ...(params.seed === undefined ? {} : { seed: params.seed }),
  });
}
