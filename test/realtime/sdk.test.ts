/**
 * Acceptance: the official openai SDK's Realtime websocket client (which only speaks wss://)
 * against Earshot over TLS with a self-signed certificate, on both transports. A real speech
 * fixture goes in as 24 kHz pcm16 in 40 ms appends; the user waits for each answer before
 * speaking again, as people do. Checked: speech_started/stopped per sentence near the truth,
 * one response per sentence with the engine's text, and the documented event order.
 */
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import t from 'tap';
import { speechFixture } from '../fixtures/speech.js';
import { startTestServer, TRANSPORTS } from '../helpers/server.js';
import { selfSignedCert } from '../helpers/tls.js';
import { pcmChunks, recordSdkEvents, responseShape, type RealtimeEvent } from './helpers.js';

const TOLERANCE_MS = 200;
const PREFIX_MS = 300;
const SILENCE_MS = 500;
const CHUNK_MS = 40;
const WAIT_LIMIT_MS = 20_000;

const RESPONSE_ORDER = [
  'response.created',
  'response.output_item.added',
  'conversation.item.added',
  'response.content_part.added',
  'response.output_text.delta*',
  'response.output_text.done',
  'response.content_part.done',
  'conversation.item.done',
  'response.output_item.done',
  'response.done',
];

const tls = await selfSignedCert();
t.teardown(tls.dispose);
const fixture = await speechFixture(3);

for (const transport of TRANSPORTS) {
  t.test(`openai SDK over wss (${transport})`, async (t) => {
    const server = await startTestServer({ transport, tlsCert: tls.cert, tlsKey: tls.key, apiKeys: ['sk-test'] });
    t.teardown(() => server.close(0));
    t.match(server.url, /^https:/);

    const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${server.url}/v1` });
    const rt = new OpenAIRealtimeWS({ model: 'earshot-echo-test-engine', options: { rejectUnauthorized: false } }, client);
    t.equal(rt.url.protocol, 'wss:', 'the SDK connects over wss');
    const { events, errors, until } = recordSdkEvents(rt, WAIT_LIMIT_MS);
    const count = (type: string) => events.filter((e) => e.type === type).length;
    await new Promise<void>((resolve, reject) => {
      rt.socket.once('open', () => resolve());
      rt.socket.once('error', reject);
    });

    rt.send({
      type: 'session.update',
      session: {
        type: 'realtime',
        output_modalities: ['text'],
        instructions: 'Answer briefly.',
        audio: { input: { format: { type: 'audio/pcm', rate: 24000 }, turn_detection: { type: 'server_vad', prefix_padding_ms: PREFIX_MS, silence_duration_ms: SILENCE_MS } } },
      },
    });
    await until(() => count('session.updated') === 1, 'session.updated');
    t.equal(events[0]!.type, 'session.created', 'session.created comes first');
    t.equal(events[0]!.session.model, 'earshot-echo-test-engine');
    const updated = events.find((e) => e.type === 'session.updated')!;
    t.same(updated.session.audio.input.format, { type: 'audio/pcm', rate: 24000 });
    t.equal(updated.session.instructions, 'Answer briefly.');
    t.same(updated.session.output_modalities, ['text']);

    // Stream as fast as the socket takes it, but before each next sentence wait for the answer to the last one.
    const chunks = pcmChunks(fixture.pcm24k, 24000, CHUNK_MS);
    let sentence = 1;
    for (const [i, chunk] of chunks.entries()) {
      const atMs = i * CHUNK_MS;
      const next = fixture.truth[sentence];
      if (next && atMs >= next.startMs - PREFIX_MS - 100) {
        await until(() => count('response.done') >= sentence, `response ${sentence}`);
        sentence++;
      }
      rt.send({ type: 'input_audio_buffer.append', audio: chunk.toString('base64') });
    }
    const n = fixture.truth.length;
    await until(() => count('response.done') >= n, 'the last response');
    rt.close();

    t.same(errors, [], 'no error events');
    const started = events.filter((e) => e.type === 'input_audio_buffer.speech_started');
    const stopped = events.filter((e) => e.type === 'input_audio_buffer.speech_stopped');
    t.equal(started.length, n, 'speech_started once per sentence');
    t.equal(stopped.length, n, 'speech_stopped once per sentence');
    fixture.truth.forEach((truth, i) => {
      const start = started[i]?.audio_start_ms as number;
      const end = stopped[i]?.audio_end_ms as number;
      t.ok(Math.abs(start - (truth.startMs - PREFIX_MS)) <= TOLERANCE_MS, `#${i} audio_start_ms ${start} includes the prefix padding (truth ${truth.startMs})`);
      t.ok(Math.abs(end - (truth.endMs + SILENCE_MS)) <= TOLERANCE_MS, `#${i} audio_end_ms ${end} includes the silence (truth ${truth.endMs})`);
    });

    const done = events.filter((e) => e.type === 'response.done');
    t.equal(done.length, n, 'one response per sentence');
    done.forEach((d, i) => {
      const response = d.response;
      t.equal(response.status, 'completed', `#${i} completed`);
      t.ok(response.usage.output_tokens > 0, `#${i} usage reported`);
      t.same(responseShape(events, response.id), RESPONSE_ORDER, `#${i} response events in the documented order`);
      const deltas = events.filter((e) => e.type === 'response.output_text.delta' && e.response_id === response.id).map((e) => e.delta as string);
      t.ok(deltas.length > 1, `#${i} text streamed in several deltas`);
      const text = deltas.join('');
      t.equal(response.output[0].content[0].text, text, `#${i} response.done carries the streamed text`);
      const heard = /heard (\d+) ms of audio/.exec(text);
      t.ok(heard, `#${i} the engine heard audio: ${text}`);
      t.match(text, new RegExp(`^Echo test engine, turn ${i + 1}: heard \\d+ ms of audio at rms [\\d.]+\\.$`), `#${i} the engine's reply to this sentence`);
      t.ok(Number(heard?.[1]) > spokenMs(i), `#${i} heard the whole sentence`);

      // Per sentence: speech_started < speech_stopped < committed < item.added/done < response.created.
      const at = (e: RealtimeEvent | undefined) => (e ? events.indexOf(e) : -1);
      const itemId = started[i]?.item_id;
      const committed = events.find((e) => e.type === 'input_audio_buffer.committed' && e.item_id === itemId);
      const added = events.find((e) => e.type === 'conversation.item.added' && e.item.id === itemId);
      const itemDone = events.find((e) => e.type === 'conversation.item.done' && e.item.id === itemId);
      const created = events.find((e) => e.type === 'response.created' && e.response.id === response.id);
      const order = [at(started[i]), at(stopped[i]), at(committed), at(added), at(itemDone), at(created)];
      t.ok(order.every((v, k) => v >= 0 && (k === 0 || v > order[k - 1]!)), `#${i} input events precede the response: ${order}`);
      t.equal(stopped[i]?.item_id, itemId, `#${i} speech_stopped names the item speech_started announced`);
    });
    const ids = events.map((e) => e.event_id);
    t.equal(new Set(ids).size, ids.length, 'every server event has a unique event_id');
  });
}

function spokenMs(i: number): number {
  const u = fixture.truth[i]!;
  return u.endMs - u.startMs;
}
