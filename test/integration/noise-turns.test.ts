/**
 * Issue 15 through the real server: plucked-string music, clicks every 200 ms and a tremolo
 * chord, each followed by one spoken sentence, as 16 kHz PCM16 over /v1/stream. With hybrid
 * (the default, on the event loop and on audio threads) and silero the only turn is the
 * sentence; with webrtc the noise itself becomes a turn.
 */
import t from 'tap';
import { joinClips } from '../../server/audio/clip.js';
import type { Config } from '../../server/config.js';
import { NOISE_CLIPS, noiseClip } from '../fixtures/noise.js';
import { speechFixture } from '../fixtures/speech.js';
import { pcmPackets, TestClient } from '../helpers/native-client.js';
import { startTestServer } from '../helpers/server.js';
import { NO_BARGE_IN, QUEUED_TURNS } from '../helpers/turn-checks.js';

const PER_MS = 16;
const TOLERANCE_MS = 150;
const GAP_MS = 1000;

function toPcm16(samples: Float32Array): Int16Array {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = Math.max(-32768, Math.min(32767, Math.round(samples[i]! * 32768)));
  return out;
}

const CONFIGS: [string, Partial<Config>][] = [
  ['hybrid', {}],
  ['hybrid on audio threads', { audioThreads: 2 }],
  ['silero', { vad: 'silero' }],
  ['webrtc', { vad: 'webrtc' }],
];

t.test('noise makes no turn with Silero; the sentence after it does', async (t) => {
  const fixture = await speechFixture(0, { sentences: 1 });
  const sentence = fixture.samples16k;
  const clips = await Promise.all(NOISE_CLIPS.map((name) => noiseClip(name)));
  for (const [label, config] of CONFIGS) {
    const server = await startTestServer({ ...QUEUED_TURNS, ...config });
    await Promise.all(
      clips.map(async (clip) => {
        const input = joinClips([clip.samples16k, new Float32Array(GAP_MS * PER_MS), sentence]);
        const speechStartMs = clip.durationMs + GAP_MS + fixture.truth[0]!.startMs;
        const client = await TestClient.connect(`${server.wsUrl}/v1/stream`);
        await client.hello({ codec: 'pcm16', sampleRate: 16000, vad: NO_BARGE_IN });
        await client.stream(pcmPackets(toPcm16(input), 16000), 20, 8);
        const noisy = label === 'webrtc';
        const turns = await client.waitForTurnsDone(noisy ? 2 : 1, 60_000);
        const last = turns.at(-1)!;
        t.ok(Math.abs(last.startMs! - speechStartMs) <= TOLERANCE_MS, `${label}, ${clip.name}: a turn for the sentence (start ${last.startMs} vs ${speechStartMs})`);
        if (noisy) t.ok(turns[0]!.startMs! < clip.durationMs, `${label}, ${clip.name}: and one for the noise (from ${turns[0]!.startMs} ms)`);
        else t.equal(turns.length, 1, `${label}, ${clip.name}: the sentence is the only turn`);
        client.close();
      }),
    );
    await server.close(0);
  }
});
