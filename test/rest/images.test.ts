/** Models that declare image input get `image_url` data URLs as image parts; remote URLs are never fetched. */
import OpenAI, { BadRequestError } from 'openai';
import t from 'tap';
import { ECHO_MODEL_ID } from '../../server/engines/echo/engine.js';
import type { ModelInfo } from '../../server/engines/types.js';
import { startTestServer } from '../helpers/server.js';
import { RecordingEngine } from './recording-engine.js';

/** The echo engine, declaring image input as an image-capable engine would. */
class SeeingEngine extends RecordingEngine {
  override models(): ModelInfo[] {
    return super.models().map((model) => ({ ...model, inputs: { ...model.inputs, image: true } }));
  }
}

const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');

t.test('an image reaches an engine that takes images, as bytes with their type', async (t) => {
  const engine = new SeeingEngine();
  const server = await startTestServer({}, { engine });
  t.teardown(() => server.close(0));
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  await client.chat.completions.create({
    model: ECHO_MODEL_ID,
    messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG.toString('base64')}` } }] }],
  });
  const parts = engine.turns[0]!.messages.at(-1)!.parts;
  t.match(parts[0], { type: 'text', text: 'what is this' });
  const image = parts[1];
  t.equal(image?.type, 'image');
  if (image?.type === 'image') {
    t.equal(image.mime, 'image/png');
    t.same(Buffer.from(image.bytes), PNG, 'the bytes decoded from the data URL');
  }
  const remote = await client.chat.completions
    .create({ model: ECHO_MODEL_ID, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }] })
    .catch((err: unknown) => err);
  t.ok(remote instanceof BadRequestError, 'a remote URL is a 400');
  t.match((remote as BadRequestError).error, { code: 'unsupported', message: /does not fetch remote images/ });
  t.equal(engine.turns.length, 1, 'and never reaches the engine');
});
