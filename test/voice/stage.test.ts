import { readdirSync, readFileSync } from 'node:fs';
import t from 'tap';
import { EarshotError } from '../../protocol/errors.js';
import { defaultConfig } from '../../server/config.js';
import { createVoiceStage } from '../../server/voice/stage.js';
import { VOICE_SAMPLE_RATE, type Pcm24k, type Tts } from '../../server/voice/types.js';
import { unheard } from '../helpers/hear.js';
import { collect } from './helpers.js';

const stage = (await createVoiceStage(defaultConfig({ ttsThreads: 1 })))!;
t.teardown(() => stage.close());
const live = () => new AbortController().signal;

t.test('--tts none leaves the stage out', async (t) => {
  t.equal(await createVoiceStage(defaultConfig({ tts: 'none' })), undefined);
});

t.test('the embedded engine says the text, at 24 kHz', async (t) => {
  t.equal(stage.tts.name, 'flite');
  const pcm = await collect(stage.speak('The quick brown fox jumps over the lazy dog. It was a sunny morning.', stage.defaultVoice, live()));
  const seconds = pcm.length / VOICE_SAMPLE_RATE;
  t.ok(seconds > 2 && seconds < 8, `${seconds.toFixed(2)} s of audio`);
  const { missing, heard } = await unheard(pcm, VOICE_SAMPLE_RATE, ['quick', 'brown', 'fox', 'dog', 'morning']);
  t.same(missing, [], `pocketsphinx heard: "${heard}"`);
});

t.test('voice names: the engine\'s own, OpenAI\'s mapped by kind, unknown names listed in the error', async (t) => {
  t.equal(stage.resolveVoice(undefined), 'awb', 'no voice: the default');
  t.equal(stage.resolveVoice('slt'), 'slt');
  t.equal(stage.resolveVoice('shimmer'), 'slt', 'a female OpenAI voice maps to the female Flite voice');
  t.equal(stage.resolveVoice('onyx'), stage.resolveVoice('onyx'), 'a mapping is stable');
  t.ok(['awb', 'rms', 'kal16'].includes(stage.resolveVoice('echo')), 'a male OpenAI voice maps to a male Flite voice');
  for (const name of ['alloy', 'ash', 'ballad', 'coral', 'echo', 'sage', 'shimmer', 'verse', 'marin', 'cedar', 'fable', 'nova', 'onyx'])
    t.ok(stage.voiceNames().includes(name), `${name} is accepted`);
  const err = (() => {
    try {
      stage.resolveVoice('darth', 'audio.voice');
    } catch (e) {
      return e as EarshotError;
    }
  })();
  t.match(err, { code: 'bad_message', param: 'audio.voice', message: /voice 'darth' is not available; voices: awb, slt, rms, kal16, alloy, ash/ });
  await t.rejects(createVoiceStage(defaultConfig({ ttsVoice: 'darth' })), /--tts-voice 'darth' is not a voice of the flite engine; available: awb, slt/);
});

t.test('a reply speaks its first clause before the rest of its text exists', async (t) => {
  const reply = stage.reply('slt', live());
  const audio = reply.audio()[Symbol.asyncIterator]();
  for (const delta of ['Good', ' morning', ' to you,', ' and'])  reply.push(delta);
  const first = await audio.next();
  t.notOk(first.done, 'audio for the first clause arrives while the reply is still being written');
  t.same(reply.spoken, [{ text: 'Good morning to you,', startSample: 0 }]);
  reply.push(' welcome back. Nice');
  reply.push(' to see you.');
  reply.end();
  const rest: Pcm24k[] = [];
  for (let next = await audio.next(); !next.done; next = await audio.next()) rest.push(next.value);
  t.same(reply.spoken.map((s) => s.text), ['Good morning to you,', 'and welcome back.', 'Nice to see you.']);
  t.equal(reply.spoken[1]!.startSample, first.value!.length, 'each piece\'s audio starts where the previous one ended');
  t.equal(reply.failed, undefined);
});

t.test('abort stops the audio at once and drops what was queued', async (t) => {
  const controller = new AbortController();
  const reply = stage.reply('awb', controller.signal);
  reply.push('One sentence here. Another sentence there. And a third one for luck. ');
  const audio = reply.audio()[Symbol.asyncIterator]();
  t.notOk((await audio.next()).done, 'first piece spoken');
  controller.abort();
  t.ok((await audio.next()).done, 'nothing after the abort');
  t.ok(reply.spoken.length < 3, `only ${reply.spoken.length} of 3 pieces went to synthesis`);
  reply.push('More text after the abort. ');
  reply.end();
  t.equal(reply.failed, undefined, 'an abort is not a failure');
});

t.test('an engine that fails ends the audio with an error naming the voice stage', async (t) => {
  let calls = 0;
  const failing: Tts = {
    name: 'flaky',
    voices: () => stage.tts.voices(),
    async *speak(text, voice, signal) {
      if (++calls === 2) throw new Error('synthesiser crashed');
      yield* stage.tts.speak(text, voice, signal);
    },
    close: async () => {},
  };
  const { StreamedReply } = await import('../../server/voice/reply.js');
  const reply = new StreamedReply(failing, 'awb', live());
  reply.push('First sentence. Second sentence. Third sentence.');
  reply.end();
  const chunks: Pcm24k[] = [];
  for await (const chunk of reply.audio()) chunks.push(chunk);
  t.equal(chunks.length, 1, 'audio of the piece before the failure is kept');
  t.match(reply.failed, { code: 'voice_error', message: 'voice stage (flaky): synthesiser crashed' });
});

t.test('synthesis runs off the event loop, and 30 calls in a row stay healthy', async (t) => {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const lengths: number[] = [];
  for (let i = 0; i < 30; i++) lengths.push((await collect(stage.speak(`Number ${i}.`, 'awb', live()))).length);
  clearInterval(timer);
  t.ok(lengths.every((n) => n > VOICE_SAMPLE_RATE / 4), 'every call made audio (node:wasi crashes after about 20)');
  t.ok(ticks > 30, `the event loop kept ticking during synthesis (${ticks} timer ticks)`);
});


t.test('a reply\'s first piece is synthesised ahead of queued later pieces; a cancelled piece never runs', async (t) => {
  const { FliteTts } = await import('../../server/voice/flite/engine.js');
  const { createLogger } = await import('../../server/observability/log.js');
  const flite = new FliteTts({ threads: 1, maxQueue: 8 }, createLogger('silent'));
  t.teardown(() => flite.close());
  const order: string[] = [];
  const say = async (text: string, first: boolean, signal = live()) => {
    for await (const _ of flite.speak(text, 'kal16', signal, { first })) order.push(text);
  };
  const cancelled = new AbortController();
  const done = [say('Busy.', false), say('Later one.', false), say('Later two.', false, cancelled.signal), say('Later three.', false), say('First.', true)];
  t.equal(flite.queued, 4, 'one piece runs, four wait');
  cancelled.abort();
  await Promise.all(done);
  t.same(order, ['Busy.', 'First.', 'Later one.', 'Later three.']);
  await t.rejects(Promise.all(Array.from({ length: 10 }, () => say('Overflow.', false))), { code: 'busy', message: /voice stage \(flite\): 8 sentences already wait/ }, 'past --tts-max-queue: busy');
});

t.test('synthesis and Opus encoding run at the lowest CPU priority, so a machine without a spare core hears before it speaks', { skip: process.platform !== 'linux' && 'thread priorities are read from /proc' }, async (t) => {
  const { FliteTts } = await import('../../server/voice/flite/engine.js');
  const { EncodingThread } = await import('../../server/voice/encoding/threads.js');
  const { createLogger } = await import('../../server/observability/log.js');
  const { BACKGROUND_NICE, SCHED_IDLE } = await import('../../server/threads.js');
  const { spawnSync } = await import('node:child_process');
  const idle = spawnSync('chrt', ['--version']).status === 0;
  const fields = (pid: number, task: string) => readFileSync(`/proc/${pid}/task/${task}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // nice is field 19 of stat, the scheduling policy field 41.
  const priority = (pid: number, task: string) => `nice ${fields(pid, task)[16]} policy ${fields(pid, task)[38]}`;
  const background = `nice ${BACKGROUND_NICE} policy ${idle ? SCHED_IDLE : 0}`;
  const loop = priority(process.pid, String(process.pid));

  const flite = new FliteTts({ threads: 1, maxQueue: 8 }, createLogger('silent'));
  t.teardown(() => flite.close());
  for await (const _ of flite.speak('Hello.', 'kal16', live())) break;
  const [pid] = flite.pids;
  const synthesis = readdirSync(`/proc/${pid}/task`).map((task) => priority(pid!, task));
  t.ok(synthesis.length > 1, `the synthesis process has its own threads (${synthesis.length})`);
  t.same([...new Set(synthesis)], [background], `every thread of the synthesis process (V8's collector helpers too) runs at ${background}`);

  const before = readdirSync('/proc/self/task');
  const opus = new EncodingThread(createLogger('silent'));
  t.teardown(() => opus.stop());
  const stream = opus.open(24_000);
  await new Promise((resolve) => stream.push(new Int16Array(4800), resolve));
  const started = readdirSync('/proc/self/task').filter((task) => !before.includes(task));
  t.ok(started.map((task) => priority(process.pid, task)).includes(background), `the Opus encoding thread runs at ${background}`);
  t.equal(priority(process.pid, String(process.pid)), loop, `the event loop keeps its priority (${loop})`);
});

t.test('a synthesis process that dies fails its sentence with voice_error, and a new process speaks the next', { skip: process.platform === 'win32' && 'signals' }, async (t) => {
  const { FliteTts } = await import('../../server/voice/flite/engine.js');
  const { createLogger } = await import('../../server/observability/log.js');
  const flite = new FliteTts({ threads: 1, maxQueue: 8 }, createLogger('silent'));
  t.teardown(() => flite.close());
  await collect(flite.speak('Hello.', 'kal16', live()));
  const [pid] = flite.pids;
  // Stopped, it cannot answer the sentence it is given before it dies.
  process.kill(pid!, 'SIGSTOP');
  const lost = collect(flite.speak('Lost.', 'kal16', live()));
  process.kill(pid!, 'SIGKILL');
  await t.rejects(lost, { code: 'voice_error', message: /voice stage \(flite\): synthesis process exited with SIGKILL/ });
  t.not(flite.pids[0], pid, 'another process took its place');
  t.ok((await collect(flite.speak('Hello again.', 'kal16', live()))).length > VOICE_SAMPLE_RATE / 4, 'and speaks');
});
