/**
 * The VAD segmenter (--vad webrtc: WebRTC VAD alone) on real speech (espeak-ng fixtures) and
 * synthesised signals, pushed in 20 ms frames as clients send them: minimum speech, the
 * utterance cap, prefix padding, the silence rule, aggressiveness and flush. Silero's modes
 * are in confirmer.test.ts.
 */
import t from 'tap';
import { speechFixture } from '../fixtures/speech.js';
import { loadFvad, WebRtcVad } from '../../server/vad/fvad.js';
import { segmenterFor } from '../../server/vad/judging.js';
import type { Segmenter, SegmentEvent, SegmenterSettings } from '../../server/vad/segmenter.js';

const PER_MS = 16;
const FRAME_MS = 20;
const FRAME = FRAME_MS * PER_MS;
/** What the server runs with unless configured otherwise. */
const DEFAULTS: SegmenterSettings = { prefixPaddingMs: 300, silenceMs: 500, minSpeechMs: 200, maxUtteranceMs: 30_000 };
const MODE = 3;
/** The segmenter's TAIL_MS: audio kept after the last voiced frame. */
const TAIL_MS = 100;
/** Fixture truth is an energy threshold, the VAD is not; the integration tests allow the same. */
const TRUTH_TOLERANCE_MS = 150;

type Stopped = Extract<SegmentEvent, { type: 'speech_stopped' }>;
/** An event and the stream time at which the segmenter emitted it. */
interface Heard {
  event: SegmentEvent;
  streamMs: number;
}

/** A WebRTC-only segmenter whose events land in `heard` with the stream time they were emitted at. */
async function webrtcSegmenter(settings: SegmenterSettings, mode = MODE): Promise<{ segmenter: Segmenter; heard: Heard[] }> {
  const heard: Heard[] = [];
  const segmenter: Segmenter = segmenterFor(await loadFvad(), { mode: 'webrtc', aggressiveness: mode, threshold: 0 }, settings, undefined, (event) => heard.push({ event, streamMs: segmenter.streamMs }));
  return { segmenter, heard };
}

/** Pushes `samples` in 20 ms frames; returns what the segmenter emitted meanwhile. */
function feed(segmenter: Segmenter, heard: Heard[], samples: Float32Array): Heard[] {
  const from = heard.length;
  for (let at = 0; at < samples.length; at += FRAME) segmenter.push(samples.subarray(at, at + FRAME));
  return heard.slice(from);
}

async function segment(samples: Float32Array, settings: Partial<SegmenterSettings> = {}, mode = MODE): Promise<Heard[]> {
  const { segmenter, heard } = await webrtcSegmenter({ ...DEFAULTS, ...settings }, mode);
  try {
    return feed(segmenter, heard, samples);
  } finally {
    segmenter.close();
  }
}

const stopped = (heard: Heard[]): Stopped[] => heard.flatMap(({ event }) => (event.type === 'speech_stopped' ? [event] : []));
const started = (heard: Heard[]) => heard.filter(({ event }) => event.type === 'speech_started');

/** The VAD's own frame decisions, from a fresh instance like the segmenter's. */
async function voicedFrames(samples: Float32Array, mode: number): Promise<boolean[]> {
  const vad = new WebRtcVad(await loadFvad(), mode);
  const out: boolean[] = [];
  for (let at = 0; at + FRAME <= samples.length; at += FRAME) out.push(vad.isSpeech(samples.subarray(at, at + FRAME)));
  vad.close();
  return out;
}

/** [first frame, length] of each run of voiced frames. */
function runs(voiced: boolean[]): [number, number][] {
  const out: [number, number][] = [];
  voiced.forEach((v, i) => {
    if (!v) return;
    const last = out[out.length - 1];
    if (last && last[0] + last[1] === i) last[1]++;
    else out.push([i, 1]);
  });
  return out;
}

const silence = (ms: number) => new Float32Array(ms * PER_MS);

/** A 140 Hz buzz with harmonics to 4 kHz: voiced enough for the VAD, with a sharp onset. */
function buzz(ms: number): Float32Array {
  const out = new Float32Array(ms * PER_MS);
  for (let i = 0; i < out.length; i++) {
    let s = 0;
    for (let h = 1; h * 140 < 4000; h++) s += Math.sin((2 * Math.PI * h * 140 * i) / 16000) / h;
    out[i] = 0.15 * s;
  }
  return out;
}

/** Uniform white noise at `rms`, from a seeded LCG so every run hears the same noise. */
function whiteNoise(ms: number, rms: number): Float32Array {
  let state = 12345;
  const out = new Float32Array(ms * PER_MS);
  for (let i = 0; i < out.length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    out[i] = ((state / 2 ** 32) * 2 - 1) * rms * Math.sqrt(3);
  }
  return out;
}

function concat(...parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Index of the first differing sample, or -1 when `audio` is exactly `input` from `fromMs` on. */
function mismatch(audio: Float32Array, input: Float32Array, fromMs: number): number {
  const from = fromMs * PER_MS;
  if (from < 0 || from + audio.length > input.length) return 0;
  for (let i = 0; i < audio.length; i++) if (audio[i] !== input[from + i]) return i;
  return -1;
}

t.test('minimum speech: blips are dropped without a word, longer speech is announced', async (t) => {
  const blip = concat(silence(1000), buzz(100), silence(1000));
  // The VAD's hangover stretches 100 ms of buzz over nine voiced frames; the contract is about those.
  t.same(runs(await voicedFrames(blip, MODE)), [[50, 9]], 'the blip is nine voiced frames from 1000 ms');

  t.same(await segment(blip, { minSpeechMs: 200 }), [], 'nine voiced frames under a 200 ms minimum: neither speech_started nor speech_stopped');

  const accepted = await segment(blip, { minSpeechMs: 180 });
  t.same(
    accepted.map(({ event, streamMs }) => ({ type: event.type, atMs: 'atMs' in event ? event.atMs : undefined, streamMs })),
    [
      { type: 'speech_started', atMs: 1000, streamMs: 1180 },
      { type: 'speech_stopped', atMs: 1680, streamMs: 1680 },
    ],
    'the same nine frames meet a 180 ms minimum: speech_started is dated at the onset but emitted once the minimum is heard',
  );
  t.match(stopped(accepted)[0], { startMs: 1000, endMs: 1180, reason: 'silence' });

  const speech = concat(silence(1000), buzz(400), silence(1000));
  const heard = await segment(speech);
  t.match(heard[0], { event: { type: 'speech_started', atMs: 1000 }, streamMs: 1200 }, '400 ms of buzz: announced 200 ms after its onset');
  t.equal(stopped(heard).length, 1, 'and ends as one utterance');
  t.match(stopped(heard)[0], { startMs: 1000, reason: 'silence' });
});

t.test('max utterance: clips never exceed the cap, prefix padding included, and the stream goes on', async (t) => {
  const fixture = await speechFixture(0);
  const input = fixture.samples16k;

  t.test('the default 30 s cap on 34 s of continuous speech', async (t) => {
    // The fixture's sentences back to back, five times: speech with no pause a VAD would end.
    const sentences = fixture.truth.map((u) => input.subarray(u.startMs * PER_MS, u.endMs * PER_MS));
    const speech = concat(silence(1000), ...Array.from({ length: 5 }, () => sentences).flat(), silence(1000));
    const heard = await segment(speech);
    const [first, second] = stopped(heard);
    t.equal(stopped(heard).length, 2, 'cut once, then ended by silence');
    t.ok(first && second);
    if (!first || !second) return;
    t.equal(first.reason, 'max_length');
    t.equal(first.audio.length, DEFAULTS.maxUtteranceMs * PER_MS, 'the cut clip is exactly 30,000 ms with its 300 ms padding');
    t.equal(first.atMs, first.startMs - DEFAULTS.prefixPaddingMs + DEFAULTS.maxUtteranceMs, 'cut when padding plus speech reach the cap');
    t.equal(mismatch(first.audio, speech, first.startMs - DEFAULTS.prefixPaddingMs), -1, 'the clip is the input from the padding on');
    const cut = heard.findIndex(({ event }) => event === first);
    t.match(heard[cut + 1], { event: { type: 'speech_started', atMs: first.atMs }, streamMs: first.atMs }, 'the continuation is announced at the cut');
    t.equal(second.startMs, first.atMs);
    t.equal(second.reason, 'silence');
    t.equal(mismatch(second.audio, speech, first.atMs), -1, 'the continuation picks up at the very sample the clip ended on');
  });

  t.test('a 1 s cap on real sentences', async (t) => {
    const cap = 1000;
    const heard = await segment(input, { maxUtteranceMs: cap });
    const pieces = stopped(heard);
    t.equal(started(heard).length, pieces.length, 'every piece was announced');
    let previous: Stopped | undefined;
    let stoppedBeforeCap = 0;
    for (const piece of pieces) {
      const continues = previous?.reason === 'max_length' && previous.atMs === piece.startMs;
      const audioStartMs = continues ? piece.startMs : piece.startMs - DEFAULTS.prefixPaddingMs;
      t.ok(piece.audio.length <= cap * PER_MS, `piece at ${piece.startMs}: ${piece.audio.length / PER_MS} ms <= ${cap} ms`);
      t.equal(mismatch(piece.audio, input, audioStartMs), -1, `piece at ${piece.startMs}: the input from ${audioStartMs} ms`);
      if (piece.reason === 'max_length') {
        t.equal(piece.atMs, audioStartMs + cap, `piece at ${piece.startMs}: cut when its audio reached the cap`);
        t.ok(piece.atMs - piece.endMs < DEFAULTS.silenceMs, `piece at ${piece.startMs}: the silence rule had not yet ended it`);
        if (piece.endMs < piece.atMs) stoppedBeforeCap++;
      } else {
        t.equal(piece.reason, 'silence');
        t.equal(piece.atMs - piece.endMs, DEFAULTS.silenceMs);
      }
      previous = piece;
    }
    // Speech that stops short of the cap, with less than silenceMs of quiet when the cap arrives,
    // was still cut by the cap: 'max_length' is the rule that ended it.
    t.ok(stoppedBeforeCap > 0, `some max_length pieces end in trailing silence (${stoppedBeforeCap})`);
    t.ok(pieces.filter((p) => p.reason === 'max_length').length >= 2 * fixture.truth.length, 'every 2+ s sentence was cut at least twice');
    const last = pieces[pieces.length - 1]!;
    const lastTruth = fixture.truth[fixture.truth.length - 1]!;
    t.ok(Math.abs(last.endMs - lastTruth.endMs) <= TRUTH_TOLERANCE_MS, `after all the cuts the last sentence still ends on time (${last.endMs} vs ${lastTruth.endMs})`);
  });

  t.test('padding longer than the cap', async (t) => {
    const cap = 1000;
    const speech = concat(silence(3000), input.subarray(fixture.truth[0]!.startMs * PER_MS, fixture.truth[0]!.endMs * PER_MS), silence(1000));
    const pieces = stopped(await segment(speech, { prefixPaddingMs: 2000, maxUtteranceMs: cap }));
    t.ok(pieces.length > 1);
    for (const piece of pieces) t.ok(piece.audio.length <= cap * PER_MS, `piece at ${piece.startMs}: ${piece.audio.length / PER_MS} ms <= ${cap} ms`);
    const first = pieces[0]!;
    t.equal(first.reason, 'max_length');
    t.equal(first.audio.length, cap * PER_MS);
    t.equal(mismatch(first.audio, speech, first.atMs - cap), -1, 'the oldest padding is what gives way: the clip is the last second before the cut');
  });
});

t.test('prefix padding: the utterance audio starts that long before the detected speech', async (t) => {
  const fixture = await speechFixture(0);
  const input = fixture.samples16k;
  for (const prefixPaddingMs of [300, 0]) {
    const pieces = stopped(await segment(input, { prefixPaddingMs }));
    t.equal(pieces.length, fixture.truth.length, `padding ${prefixPaddingMs}: one utterance per sentence`);
    pieces.forEach((piece, i) => {
      const truth = fixture.truth[i]!;
      t.ok(Math.abs(piece.startMs - truth.startMs) <= TRUTH_TOLERANCE_MS, `#${i}: start ${piece.startMs} vs truth ${truth.startMs}`);
      t.equal(mismatch(piece.audio, input, piece.startMs - prefixPaddingMs), -1, `padding ${prefixPaddingMs} #${i}: audio is the input from ${piece.startMs - prefixPaddingMs} ms`);
      t.equal(piece.audio.length, (piece.endMs + TAIL_MS - (piece.startMs - prefixPaddingMs)) * PER_MS, `padding ${prefixPaddingMs} #${i}: through the tail after endMs`);
    });
  }

  // A dropped blip's frames become the padding of the speech that follows, in order.
  const prefixPaddingMs = 500;
  const signal = concat(silence(1000), buzz(60), silence(380), buzz(400), silence(1000));
  t.same(runs(await voicedFrames(signal, MODE)).map(([first]) => first * FRAME_MS), [1000, 1440], 'a blip at 1000 ms, speech at 1440 ms');
  const pieces = stopped(await segment(signal, { prefixPaddingMs }));
  t.equal(pieces.length, 1, 'the blip is no utterance');
  t.equal(pieces[0]?.startMs, 1440);
  t.equal(mismatch(pieces[0]!.audio, signal, 1440 - prefixPaddingMs), -1, 'the padding still holds the blip, exactly as heard');
});

t.test('silence: an utterance ends silenceMs after its last voiced frame', async (t) => {
  const fixture = await speechFixture(0);
  for (const silenceMs of [500, 300]) {
    const heard = await segment(fixture.samples16k, { silenceMs });
    const pieces = heard.filter(({ event }) => event.type === 'speech_stopped');
    t.equal(pieces.length, fixture.truth.length, `silence ${silenceMs}: one utterance per sentence`);
    pieces.forEach(({ event, streamMs }, i) => {
      if (event.type !== 'speech_stopped') return;
      const truth = fixture.truth[i]!;
      t.equal(event.reason, 'silence');
      t.equal(event.atMs - event.endMs, silenceMs, `silence ${silenceMs} #${i}: stopped exactly silenceMs after the speech`);
      t.equal(streamMs, event.atMs, `silence ${silenceMs} #${i}: emitted when the stream reaches atMs`);
      t.ok(Math.abs(event.endMs - truth.endMs) <= TRUTH_TOLERANCE_MS, `silence ${silenceMs} #${i}: endMs ${event.endMs} is the end of speech (truth ${truth.endMs})`);
    });
  }

  // Two sentences 600 ms apart: one utterance when silenceMs outlasts the pause, two when it does not.
  const [a, b] = fixture.truth;
  const two = concat(
    silence(500),
    fixture.samples16k.subarray(a!.startMs * PER_MS, a!.endMs * PER_MS),
    silence(600),
    fixture.samples16k.subarray(b!.startMs * PER_MS, b!.endMs * PER_MS),
    silence(1000),
  );
  const bEndMs = 500 + (a!.endMs - a!.startMs) + 600 + (b!.endMs - b!.startMs);
  const joined = stopped(await segment(two, { silenceMs: 800 }));
  t.equal(joined.length, 1, 'a 600 ms pause does not end an utterance with silenceMs 800');
  t.ok(Math.abs(joined[0]!.endMs - bEndMs) <= TRUTH_TOLERANCE_MS, `it runs to the end of the second sentence (${joined[0]!.endMs} vs ${bEndMs})`);
  t.equal(stopped(await segment(two, { silenceMs: 300 })).length, 2, 'the same pause ends it with silenceMs 300');
});

t.test('aggressiveness: mode 3 hears speech in noise less often than mode 0', async (t) => {
  const count = (voiced: boolean[]) => voiced.filter(Boolean).length;
  // Moderate white noise (-30 dBFS): mode 0 soon takes nearly all of it for speech, mode 3 only the VAD's start-up frames.
  const noise = whiteNoise(10_000, 0.03);
  const noiseCounts = await Promise.all([0, 1, 2, 3].map(async (mode) => count(await voicedFrames(noise, mode))));
  t.ok(noiseCounts[0]! > 10 * noiseCounts[3]!, `white noise: mode 0 ${noiseCounts[0]} frames vs mode 3 ${noiseCounts[3]}`);
  t.ok(noiseCounts.every((n, i) => i === 0 || n <= noiseCounts[i - 1]!), `white noise: never more speech as the mode rises (${noiseCounts.join(', ')})`);
  t.same(await segment(noise, {}, 3), [], 'the segmenter in mode 3 hears no speech in the noise');
  t.ok(started(await segment(noise, {}, 0)).length > 0, 'in mode 0 it announces speech that is only noise');

  for (const id of [0, 1, 2]) {
    const fixture = await speechFixture(id, { noisy: true });
    const counts = await Promise.all([0, 3].map(async (mode) => count(await voicedFrames(fixture.samples16k, mode))));
    t.ok(counts[1]! < counts[0]!, `noisy fixture ${id}: mode 3 ${counts[1]} speech frames vs mode 0 ${counts[0]}`);
    t.equal(stopped(await segment(fixture.samples16k, {}, 3)).length, fixture.truth.length, `noisy fixture ${id}: mode 3 still finds every sentence`);
  }
});

t.test('flush ends the utterance in progress', async (t) => {
  const fixture = await speechFixture(0);
  const input = fixture.samples16k;
  const full = stopped(await segment(input));
  const first = fixture.truth[0]!;
  const cutMs = Math.round((first.startMs + first.endMs) / 2 / FRAME_MS) * FRAME_MS;

  const { segmenter, heard } = await webrtcSegmenter(DEFAULTS);
  t.teardown(() => segmenter.close());
  const before = feed(segmenter, heard, input.subarray(0, cutMs * PER_MS));
  t.equal(started(before).length, 1, 'the sentence was announced');
  t.equal(stopped(before).length, 0);
  t.ok(segmenter.speaking);

  const flushed = heard.length;
  t.equal(segmenter.flush(), true, 'flush says it ended an utterance');
  const events = heard.slice(flushed).map(({ event }) => event);
  t.equal(events.length, 1, 'one event');
  const piece = events[0] as Stopped;
  t.match(piece, { type: 'speech_stopped', reason: 'commit', atMs: cutMs, startMs: full[0]!.startMs, endMs: cutMs });
  t.equal(piece.audio.length, (cutMs - (piece.startMs - DEFAULTS.prefixPaddingMs)) * PER_MS, 'padding and everything heard, up to the commit');
  t.equal(mismatch(piece.audio, input, piece.startMs - DEFAULTS.prefixPaddingMs), -1, 'exactly the input');
  t.notOk(segmenter.speaking);
  t.equal(segmenter.flush(), false, 'a second flush has nothing left to end');
  t.equal(heard.length, flushed + 1, 'and emits nothing');

  const after = feed(segmenter, heard, input.subarray(cutMs * PER_MS));
  t.equal(stopped(after).length, fixture.truth.length, 'the rest of the sentence and the two after it are still segmented');
  t.ok(stopped(after)[0]!.startMs >= cutMs, 'the rest of the first sentence is a new utterance');

  // Before the minimum speech is heard nothing was announced, so a flush has nothing to end.
  const early = await webrtcSegmenter(DEFAULTS);
  t.teardown(() => early.segmenter.close());
  t.same(feed(early.segmenter, early.heard, input.subarray(0, (first.startMs + 100) * PER_MS)), [], 'the first 100 ms of speech: not yet announced');
  t.equal(early.segmenter.flush(), false, 'flush during the minimum speech ends nothing');
  t.equal(early.segmenter.flush(), false, 'nor while quiet');
  t.same(early.heard, [], 'and neither emits an event');
});
