/**
 * The `openai` engine through a real Earshot server: a REST history with two voice messages,
 * sent with the official SDK, reaches a real upstream with only the newest clip as audio (the
 * earlier one as the mlx engine's text note), or with every clip under --upstream-history-audio all.
 * Once a voice message has been transcribed (Realtime input transcription), later turns carry
 * its words in place of the note.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import t from 'tap';
import { decodeWav, encodeWav16 } from '../../server/audio/wav.js';
import { transcriptionInstruction } from '../../server/engines/transcribe.js';
import { startTestServer } from '../helpers/server.js';
import { RealtimeClient } from '../realtime/helpers.js';

const RATE = 16_000;
const USER_WORDS = 'what is the weather like in Lisbon';

function clip(ms: number): { type: 'input_audio'; input_audio: { data: string; format: 'wav' } } {
  const samples = new Float32Array((RATE * ms) / 1000);
  for (let i = 0; i < samples.length; i++) samples[i] = 0.2 * Math.sin((2 * Math.PI * 440 * i) / RATE);
  return { type: 'input_audio', input_audio: { data: Buffer.from(encodeWav16(samples, RATE)).toString('base64'), format: 'wav' } };
}

async function upstream(t: { teardown(fn: () => unknown): void }) {
  const bodies: any[] = [];
  const server = createServer(async (req, res) => {
    // The engine checks the upstream with GET /models at start (and while it is down).
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ object: 'list', data: [{ id: 'upstream-model', object: 'model' }] }));
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    bodies.push(body);
    // A transcription (no transcription model: the chat model with the instruction) hears these words.
    const transcribing = JSON.stringify(body.messages).includes(transcriptionInstruction().slice(0, 40));
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: transcribing ? USER_WORDS : 'ok' }, finish_reason: 'stop' }] })}\n\n`);
    res.end('data: [DONE]\n\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, bodies };
}

/** Seconds of each input_audio part the upstream received, message by message; text parts as their text. */
function received(body: any): (string | number)[][] {
  return body.messages.map((m: any) =>
    typeof m.content === 'string'
      ? [m.content]
      : m.content.map((p: any) => (p.type === 'text' ? p.text : decodeWav(Buffer.from(p.input_audio.data, 'base64')).channels[0]!.length / RATE)),
  );
}

const history: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [
  { role: 'user', content: [clip(1200)] },
  { role: 'assistant', content: 'heard you' },
  { role: 'user', content: [{ type: 'text', text: 'and now:' }, clip(800)] },
];

for (const mode of ['newest', 'all'] as const) {
  t.test(`history audio: ${mode}`, async (t) => {
    const up = await upstream(t);
    const server = await startTestServer({ engine: 'openai', upstreamUrl: up.url, upstreamModel: 'gemma-4-e4b-it', upstreamHistoryAudio: mode });
    t.teardown(() => server.close(0));
    const client = new OpenAI({ apiKey: 'x', baseURL: `${server.url}/v1`, maxRetries: 0 });
    const reply = await client.chat.completions.create({ model: 'gemma-4-e4b-it', messages: history });
    t.equal(reply.choices[0]?.message.content, 'ok');
    t.equal(up.bodies.length, 1);
    const first = mode === 'newest' ? ['[voice message, 1.2 s]'] : [1.2];
    t.same(received(up.bodies[0]), [first, ['heard you'], ['and now:', 0.8]]);
  });
}

t.test('a transcribed voice message reaches later turns as its words, not a note', async (t) => {
  const up = await upstream(t);
  const server = await startTestServer({ engine: 'openai', upstreamUrl: up.url, upstreamModel: 'gemma-4-e4b-it' });
  t.teardown(() => server.close(0));
  const rt = await RealtimeClient.connect(`${server.wsUrl}/v1/realtime`);
  t.teardown(() => rt.close());
  rt.send({ type: 'session.update', session: { type: 'realtime', output_modalities: ['text'], audio: { input: { transcription: { model: 'x' }, turn_detection: null } } } });
  await rt.waitForType('session.updated');
  // 1.2 s of a tone as the session's input format (pcm16 at 24 kHz).
  const pcm24k = Buffer.from(new Int16Array(24 * 1200).map((_, i) => Math.round(6000 * Math.sin((2 * Math.PI * 440 * i) / 24000))).buffer);
  rt.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_audio', audio: pcm24k.toString('base64') }] } });
  const completed = await rt.waitForType('conversation.item.input_audio_transcription.completed');
  t.equal(completed.transcript, USER_WORDS, 'the voice message is transcribed');
  rt.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'and tomorrow?' }] } });
  rt.send({ type: 'response.create' });
  await rt.waitForType('response.done');
  t.same(received(up.bodies.at(-1)), [[USER_WORDS], ['and tomorrow?']], 'the reply\'s history has the words where the note was');
});
