/** --max-request-audio-ms bounds the audio of one REST request, all clips together, on both REST routes, through the official SDK. */
import OpenAI, { BadRequestError, toFile } from 'openai';
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { ECHO_MODEL_ID } from '../../server/engines/echo/engine.js';
import { speechFixture } from '../fixtures/speech.js';
import { startTestServer } from '../helpers/server.js';

const fixture = await speechFixture(0);
const wav = await readFile(fixture.wav16kPath);
// One clip fits; two of them in one request do not.
const limitMs = Math.round(fixture.durationMs * 1.5);
const server = await startTestServer({ maxRequestAudioMs: limitMs });
t.teardown(() => server.close(0));
const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
const clip = { type: 'input_audio' as const, input_audio: { data: wav.toString('base64'), format: 'wav' as const } };

t.test('chat completions: one clip under the limit is heard, two over it are refused with limit_exceeded', async (t) => {
  const one = await client.chat.completions.create({ model: ECHO_MODEL_ID, messages: [{ role: 'user', content: [clip] }] });
  t.match(one.choices[0]?.message.content, /heard \d+ ms of audio/);
  const refused = await client.chat.completions.create({ model: ECHO_MODEL_ID, messages: [{ role: 'user', content: [clip, clip] }] }).catch((err: unknown) => err);
  t.ok(refused instanceof BadRequestError, 'a 400 the SDK raises as BadRequestError');
  t.match((refused as BadRequestError).error, { code: 'limit_exceeded', message: new RegExp(`the limit is ${limitMs} ms per request`) });
});

t.test('transcriptions: a file over the limit is refused with limit_exceeded', async (t) => {
  const small = await startTestServer({ maxRequestAudioMs: Math.round(fixture.durationMs / 2) });
  t.teardown(() => small.close(0));
  const strict = new OpenAI({ baseURL: `${small.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const refused = await strict.audio.transcriptions.create({ file: await toFile(wav, 'speech.wav'), model: ECHO_MODEL_ID }).catch((err: unknown) => err);
  t.ok(refused instanceof BadRequestError, 'a 400 the SDK raises as BadRequestError');
  t.match((refused as BadRequestError).error, { code: 'limit_exceeded' });
  const accepted = await client.audio.transcriptions.create({ file: await toFile(wav, 'speech.wav'), model: ECHO_MODEL_ID });
  t.match(accepted.text, /^\[echo test transcript: \d+\.\d+ s of audio/, 'under the limit it is transcribed');
});
