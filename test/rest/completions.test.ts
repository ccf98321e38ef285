/**
 * The official openai SDK against a real server on both transports: text, WAV and MP3 made
 * from real speech, streamed and not. The echo engine reports how much audio reached it,
 * so a matching duration proves the clip was decoded and resampled intact.
 */
import OpenAI from 'openai';
import type { ChatCompletionContentPart, ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import t from 'tap';
import { decodeMp3 } from '../../server/audio/mp3.js';
import { ECHO_MODEL_ID } from '../../server/engines/echo/engine.js';
import { mp3Of, speechFixture, wavVariant, type SpeechFixture } from '../fixtures/speech.js';
import { startTestServer, TRANSPORTS } from '../helpers/server.js';

function audioPart(bytes: Buffer, format: 'wav' | 'mp3'): ChatCompletionContentPart {
  return { type: 'input_audio', input_audio: { data: bytes.toString('base64'), format } };
}

function rmsOf(text: string): string | undefined {
  return /at rms (\d+\.\d+)/.exec(text)?.[1];
}

function heardMs(text: string): number {
  const ms = /heard (\d+) ms of audio/.exec(text)?.[1];
  if (ms === undefined) throw new Error(`no duration in ${JSON.stringify(text)}`);
  return Number(ms);
}

async function ask(client: OpenAI, request: Omit<ChatCompletionCreateParamsNonStreaming, 'model'>, stream: boolean): Promise<{ text: string; finish: string | null; usage: OpenAI.CompletionUsage | undefined; roles: string[] }> {
  if (!stream) {
    const completion = await client.chat.completions.create({ model: ECHO_MODEL_ID, ...request, stream: false });
    const choice = completion.choices[0]!;
    return { text: choice.message.content ?? '', finish: choice.finish_reason, usage: completion.usage, roles: [choice.message.role] };
  }
  const chunks = await client.chat.completions.create({ model: ECHO_MODEL_ID, ...request, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | undefined;
  const roles: string[] = [];
  for await (const chunk of chunks) {
    if (chunk.usage) usage = chunk.usage;
    const choice = chunk.choices[0];
    if (!choice) continue;
    if (choice.delta.role) roles.push(choice.delta.role);
    text += choice.delta.content ?? '';
    finish = choice.finish_reason ?? finish;
  }
  return { text, finish, usage, roles };
}

let fixture: SpeechFixture & { rms: number };
let mp3: Buffer;
let mp3DecodedMs: number;

t.before(async () => {
  const speech = await speechFixture(3, { sentences: 1 });
  fixture = { ...speech, rms: Math.sqrt(speech.samples16k.reduce((sum, x) => sum + x * x, 0) / speech.samples16k.length) };
  mp3 = await mp3Of(fixture);
  const decoded = await decodeMp3(mp3);
  mp3DecodedMs = (decoded.channels[0]!.length * 1000) / decoded.sampleRate;
});

for (const transport of TRANSPORTS) {
  t.test(`chat completions over ${transport}`, async (t) => {
    const server = await startTestServer({ transport });
    t.teardown(() => server.close(0));
    const client = new OpenAI({ apiKey: 'x', baseURL: `${server.url}/v1`, maxRetries: 0 });
    const wav = await wavVariant(fixture, { rate: 16000, channels: 1 });

    for (const stream of [false, true]) {
      const mode = stream ? 'streamed' : 'whole';
      const text = await ask(client, { messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello there' }] }, stream);
      t.match(text.text, /heard no audio and read "hello there"/, `${mode}: a text message reaches the engine`);
      t.equal(text.finish, 'stop', `${mode}: finish_reason stop`);
      t.same(text.roles, ['assistant'], `${mode}: the role is announced once`);
      t.ok(text.usage && text.usage.total_tokens === text.usage.prompt_tokens + text.usage.completion_tokens && text.usage.completion_tokens > 0, `${mode}: usage adds up`);

      const spoken = await ask(client, { messages: [{ role: 'user', content: [{ type: 'text', text: 'what did I say?' }, audioPart(wav, 'wav')] }] }, stream);
      t.ok(Math.abs(heardMs(spoken.text) - fixture.durationMs) <= 30, `${mode}: WAV reached the engine whole (${heardMs(spoken.text)} ms vs ${fixture.durationMs} ms)`);
      t.match(spoken.text, /read "what did I say\?"/, `${mode}: text and audio parts of one message both arrive`);
      t.equal(spoken.usage?.prompt_tokens_details?.audio_tokens, Math.ceil((heardMs(spoken.text) / 1000) * 25), `${mode}: audio tokens reported`);

      t.equal(rmsOf(spoken.text), fixture.rms.toFixed(4), `${mode}: WAV samples arrive unchanged (same level)`);

      // lame adds ~1 frame of encoder delay and padding; mpg123's gapless mode trims what LAME's header
      // records, so the source duration holds as tightly as for WAV. The decoder's own length is checked
      // too, so a failure tells a decoder change from a pipeline loss.
      const fromMp3 = heardMs((await ask(client, { messages: [{ role: 'user', content: [audioPart(mp3, 'mp3')] }] }, stream)).text);
      t.ok(Math.abs(fromMp3 - mp3DecodedMs) <= 1, `${mode}: the decoded MP3 reached the engine whole (${fromMp3} ms vs ${mp3DecodedMs} ms)`);
      t.ok(Math.abs(fromMp3 - fixture.durationMs) <= 30, `${mode}: MP3 keeps the speech's duration (${fromMp3} vs ${fixture.durationMs} ms)`);
    }

    for (const layout of [{ rate: 44100, channels: 2 as const }, { rate: 8000, channels: 1 as const }, { rate: 24000, channels: 1 as const, bits: 24 as const }, { rate: 48000, channels: 1 as const, float: true }]) {
      const bytes = await wavVariant(fixture, layout);
      const reply = await ask(client, { messages: [{ role: 'user', content: [audioPart(bytes, 'wav')] }] }, false);
      t.ok(Math.abs(heardMs(reply.text) - fixture.durationMs) <= 20, `${JSON.stringify(layout)} WAV resampled with its duration kept (${heardMs(reply.text)} ms)`);
    }

    const labelledWav = await ask(client, { messages: [{ role: 'user', content: [audioPart(mp3, 'wav')] }] }, false);
    t.ok(Math.abs(heardMs(labelledWav.text) - mp3DecodedMs) <= 1, `MP3 bytes labelled wav (as LangChain sends them) are decoded as MP3 (${heardMs(labelledWav.text)} ms)`);
    const labelledMp3 = await ask(client, { messages: [{ role: 'user', content: [audioPart(wav, 'mp3')] }] }, false);
    t.equal(rmsOf(labelledMp3.text), fixture.rms.toFixed(4), 'WAV bytes labelled mp3 are decoded as WAV');

    // The SDK's types want `model`; raw clients (curl, LangChain configs) leave it out, as vLLM and llama-server allow.
    const unnamed = await client.chat.completions.create({ messages: [{ role: 'user', content: 'hi' }] } as unknown as ChatCompletionCreateParamsNonStreaming);
    t.equal(unnamed.model, ECHO_MODEL_ID, 'a request without model is answered by the served model');
    t.match(unnamed.choices[0]!.message.content, /read "hi"/);

    const short = await client.chat.completions.create({ model: ECHO_MODEL_ID, messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 3 });
    t.equal(short.choices[0]!.finish_reason, 'length', 'max_completion_tokens cuts the answer with finish_reason length');
    t.equal(short.usage?.completion_tokens, 3, 'and the engine produced exactly that many tokens');
    t.match(short.id, /^chatcmpl-/, 'completion ids look like OpenAI\'s');

    const tolerant = await client.chat.completions.create({
      model: ECHO_MODEL_ID,
      messages: [{ role: 'developer', content: 'be brief' }, { role: 'user', content: 'hi' }],
      n: 1,
      seed: 7,
      temperature: 0.2,
      top_p: 0.9,
      stop: ['\n'],
      user: 'someone',
      logprobs: false,
      metadata: { from: 'test' },
    } as ChatCompletionCreateParamsNonStreaming);
    t.match(tolerant.choices[0]!.message.content, /read "hi"/, 'known parameters and fields Earshot does not use are accepted');
  });
}
