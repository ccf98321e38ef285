/**
 * Realtime client libraries as their users run them, each with its own default session, which
 * asks for audio: @openai/agents-realtime (a RealtimeSession over its websocket transport,
 * `['audio']`) and openai-realtime-api (beta, always `['text', 'audio']`). Each must get a
 * spoken reply that says its transcript.
 */
import { OpenAIRealtimeWebSocket, RealtimeAgent, RealtimeSession } from '@openai/agents-realtime';
import { RealtimeClient } from 'openai-realtime-api';
import t from 'tap';
import { unheard } from '../helpers/hear.js';
import { startTestServer } from '../helpers/server.js';

const server = await startTestServer();
t.teardown(() => server.close(0));
const realtimeUrl = `${server.wsUrl}/v1/realtime`;

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
