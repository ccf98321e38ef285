/**
 * Realtime client libraries as their users run them, each with its own default session, which
 * asks for audio: @openai/agents-realtime (a RealtimeSession over its websocket transport,
 * `['audio']`) and openai-realtime-api (beta, always `['text', 'audio']`). Each must get a
 * spoken reply that says its transcript, and, with input transcription on, the user's words in
 * its own record of the conversation (agents' history, openai-realtime-api's items).
 */
import { OpenAIRealtimeWebSocket, RealtimeAgent, RealtimeSession } from '@openai/agents-realtime';
import { RealtimeClient } from 'openai-realtime-api';
import t from 'tap';
import { speechFixture } from '../fixtures/speech.js';
import { unheard } from '../helpers/hear.js';
import { startTestServer } from '../helpers/server.js';

const server = await startTestServer();
t.teardown(() => server.close(0));
const realtimeUrl = `${server.wsUrl}/v1/realtime`;
const TEST_TRANSCRIPT = /^\[echo test transcript: \d+\.\d+ s of audio at rms \d\.\d+\]$/;
/** One spoken sentence and a second of silence (server VAD ends the turn on it), 24 kHz pcm16. */
const fixture = await speechFixture(3, { sentences: 1 });
const spoken = new Int16Array(fixture.pcm24k.length + 24_000);
spoken.set(fixture.pcm24k);

t.test('@openai/agents-realtime: the default (audio) session hears a spoken reply', async (t) => {
  const agent = new RealtimeAgent({ name: 'assistant', instructions: 'Answer briefly.' });
  const transport = new OpenAIRealtimeWebSocket({ url: `${realtimeUrl}?model=earshot`, useInsecureApiKey: true });
  const session = new RealtimeSession(agent, { transport, model: 'earshot' });
  const errors: unknown[] = [];
  session.on('error', (e) => errors.push(e));
  const chunks: Buffer[] = [];
  session.on('audio', (e) => chunks.push(Buffer.from(e.data)));
  const done = new Promise<void>((resolve) => transport.on('turn_done', () => resolve()));
  await session.connect({ apiKey: 'unused' });
  t.teardown(() => session.close());
  session.sendMessage('Good morning. Please open the window.');
  await done;
  t.same(errors, [], 'no errors');
  const audio = Buffer.concat(chunks);
  t.ok(audio.length > 24000, `${audio.length} bytes of audio`);
  const { missing, heard } = await unheard(new Int16Array(audio.buffer, audio.byteOffset, audio.length / 2), 24000, ['morning', 'window']);
  t.same(missing, [], `heard: ${heard}`);
  const reply = session.history.find((item) => item.type === 'message' && item.role === 'assistant');
  t.match(JSON.stringify(reply), /open the window/, 'the history holds the transcript');
});

t.test('openai-realtime-api (text + audio): the completed item has audio and its transcript', async (t) => {
  const client = new RealtimeClient({ url: realtimeUrl, apiKey: 'unused', model: 'earshot' });
  await client.connect();
  t.teardown(() => client.disconnect());
  await client.waitForSessionCreated();
  client.sendUserMessageContent([{ type: 'input_text', text: 'Good morning. Please open the window.' }]);
  type Item = { role?: string; formatted?: { audio?: Int16Array; transcript?: string } };
  let reply: Item = {};
  // The user's item completes first; the assistant's once its audio is done.
  while (reply.role !== 'assistant') reply = (await client.waitForNextCompletedItem()) as unknown as Item;
  const formatted = reply.formatted!;
  t.match(formatted.transcript, /open the window/);
  t.ok(formatted.audio!.length > 24000, `${formatted.audio!.length} samples`);
  // It asks for 'alloy', Flite's US female voice here, which the recogniser hears less well: one key word.
  const { missing, heard } = await unheard(formatted.audio!, 24000, ['window']);
  t.same(missing, [], `heard: ${heard}`);
});

t.test('@openai/agents-realtime: with input transcription on, the history shows the user\'s transcript', async (t) => {
  const agent = new RealtimeAgent({ name: 'assistant', instructions: 'Answer briefly.' });
  const transport = new OpenAIRealtimeWebSocket({ url: `${realtimeUrl}?model=earshot`, useInsecureApiKey: true });
  const session = new RealtimeSession(agent, { transport, model: 'earshot', config: { audio: { input: { transcription: { model: 'whisper-1' } } } } });
  const errors: unknown[] = [];
  session.on('error', (e) => errors.push(e));
  type Content = { type: string; transcript?: string | null };
  const transcriptOf = (history: typeof session.history) =>
    history.flatMap((item) => (item.type === 'message' && item.role === 'user' ? (item.content as Content[]) : [])).find((c) => c.type === 'input_audio' && c.transcript)?.transcript;
  const heard = new Promise<string>((resolve) =>
    session.on('history_updated', (history) => {
      const transcript = transcriptOf(history);
      if (transcript) resolve(transcript);
    }),
  );
  await session.connect({ apiKey: 'unused' });
  t.teardown(() => session.close());
  session.sendAudio(spoken.slice().buffer);
  t.match(await heard, TEST_TRANSCRIPT, 'the user item in the history carries the transcript');
  t.same(errors, [], 'no errors');
});

t.test('openai-realtime-api: its conversation item gets the user\'s transcript', async (t) => {
  const client = new RealtimeClient({ url: realtimeUrl, apiKey: 'unused', model: 'earshot' });
  await client.connect();
  t.teardown(() => client.disconnect());
  await client.waitForSessionCreated();
  // Its default session asks for input_audio_transcription (whisper-1) and no turn detection: createResponse commits the audio.
  const completed = client.realtime.waitForNext('server.conversation.item.input_audio_transcription.completed');
  client.appendInputAudio(spoken);
  client.createResponse();
  const event = (await completed) as unknown as { item_id: string };
  const item = client.conversation.getItem(event.item_id) as unknown as { role: string; formatted: { transcript: string } };
  t.equal(item.role, 'user');
  t.match(item.formatted.transcript, TEST_TRANSCRIPT, 'the user item\'s formatted transcript is the test transcript');
});
