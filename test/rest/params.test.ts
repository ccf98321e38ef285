/**
 * Sampling parameters and system prompts sent through the official SDK arrive in the engine's
 * TurnRequest: a recording engine keeps every turn, found again by the completion's id.
 */
import OpenAI from 'openai';
import t from 'tap';
import { ECHO_MODEL_ID } from '../../server/engines/echo/engine.js';
import type { Message, TurnRequest } from '../../server/engines/types.js';
import { startTestServer } from '../helpers/server.js';
import { RecordingEngine } from './recording-engine.js';

/** Server defaults that differ from the built-in ones, so a default is told from a value the request carried. */
const DEFAULTS = { maxTokens: 40, temperature: 0.35 };

function text(message: Message | undefined): string | undefined {
  return message?.parts.map((p) => (p.type === 'text' ? p.text : `<${p.type}>`)).join('');
}

t.test('REST parameters reach the engine', async (t) => {
  const engine = new RecordingEngine();
  const server = await startTestServer(DEFAULTS, { engine });
  t.teardown(() => server.close(0));
  const client = new OpenAI({ apiKey: 'x', baseURL: `${server.url}/v1`, maxRetries: 0 });
  const turnOf = (id: string): TurnRequest => {
    const turn = engine.turns.find((x) => x.id === id);
    if (!turn) throw new Error(`the engine never saw ${id}`);
    return turn;
  };

  const full = await client.chat.completions.create({
    model: ECHO_MODEL_ID,
    messages: [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'hi' },
    ],
    temperature: 1.25,
    top_p: 0.5,
    stop: 'END',
    seed: 42,
    max_completion_tokens: 7,
    max_tokens: 99,
  });
  const turn = turnOf(full.id);
  t.same(turn.params, { maxTokens: 7, temperature: 1.25, topP: 0.5, stop: ['END'], seed: 42 }, 'every sampling parameter arrives; max_completion_tokens wins over max_tokens');
  t.equal(turn.messages[0]?.role, 'system', 'the system message comes first');
  t.equal(text(turn.messages[0]), 'You are terse.', 'with its text');
  t.same(turn.messages.map((m) => m.role), ['system', 'user']);

  const legacy = await client.chat.completions.create({
    model: ECHO_MODEL_ID,
    messages: [
      { role: 'developer', content: [{ type: 'text', text: 'Answer in French.' }] },
      { role: 'user', content: 'hi' },
    ],
    max_tokens: 11,
    stop: ['a', 'b'],
    temperature: 0,
  });
  const legacyTurn = turnOf(legacy.id);
  t.equal(legacyTurn.params.maxTokens, 11, 'max_tokens alone sets the limit');
  t.same(legacyTurn.params.stop, ['a', 'b'], 'a stop list arrives as is');
  t.equal(legacyTurn.params.temperature, 0, 'temperature 0 is a value, not a missing one');
  t.same(legacyTurn.messages.map((m) => [m.role, text(m)]), [['system', 'Answer in French.'], ['user', 'hi']], 'a developer message becomes the system message');

  const streamed = await client.chat.completions.create({ model: ECHO_MODEL_ID, messages: [{ role: 'user', content: 'hi' }], stream: true, seed: 3, max_completion_tokens: 5 });
  let streamedId = '';
  for await (const chunk of streamed) streamedId = chunk.id;
  t.same(turnOf(streamedId).params, { maxTokens: 5, temperature: DEFAULTS.temperature, seed: 3 }, 'a streamed request carries its parameters too');

  const bare = await client.chat.completions.create({ model: ECHO_MODEL_ID, messages: [{ role: 'user', content: 'hi' }] });
  const bareTurn = turnOf(bare.id);
  t.same(bareTurn.params, { maxTokens: DEFAULTS.maxTokens, temperature: DEFAULTS.temperature }, "without parameters the server's --max-tokens and --temperature apply, and nothing else is set");
  t.same(bareTurn.messages.map((m) => m.role), ['user'], 'no system message is invented');
});
