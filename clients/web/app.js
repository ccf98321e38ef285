/**
 * The Earshot chat page: microphone and typed turns over /v1/stream, replies streaming into
 * the conversation and spoken in the server's voice (or the browser's, or not at all).
 * `window.earshot` mirrors the state for tests.
 */
import { Capture, chooseCodec } from './capture.js';
import { Connection } from './connection.js';
import { Speaker } from './speech.js';
import { VoicePlayer } from './voice.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
/** The key lives in this tab's sessionStorage, never in the page URL (history, logs, shared links). */
const KEY_STORAGE = 'earshot.key';
if (params.has('token')) {
  sessionStorage.setItem(KEY_STORAGE, params.get('token'));
  params.delete('token');
  history.replaceState(null, '', `${location.pathname}${params.size ? `?${params}` : ''}${location.hash}`);
}

const state = {
  connection: 'connecting',
  codec: undefined,
  sampleRate: undefined,
  engine: undefined,
  testEngine: undefined,
  speaking: false,
  microphone: false,
  turns: [],
  droppedFrames: 0,
  sentFrames: 0,
  /** Every `error` the server sent, for tests and debugging. */
  errors: [],
  /** Who speaks replies: 'server' (its voice, the default), 'browser' (speech synthesis) or 'off'. */
  voiceMode: ['server', 'browser', 'off'].includes(params.get('voice')) ? params.get('voice') : 'server',
  /** The server's voice as `ready` settled it (undefined: the server has none). */
  voice: undefined,
  /** The server's voice is playing. */
  playing: false,
  /** Replies cut short by the user, with how much of each was heard (the server's `truncated`). */
  truncated: [],
};
window.earshot = state;

const speaker = new Speaker();
const player = new VoicePlayer({ onSpeaking: setPlaying });
/** The loudest sample the page has played, for tests. */
window.earshotPlayerPeak = () => player.peak;
const views = new Map(); // turnId → { turn, li, text, meta }
const awaitingWords = new Map(); // turnId → { turn, said }: audio turns whose transcript has not come yet
let capture;
let connection;
/** Maps the server's stream clock (ms of audio received this session) to performance.now(). */
const clock = { streamMs: 0, wallMs: 0 };
let lastTypedAt;
let silenceAt;

function setConnection(name, detail) {
  state.connection = name;
  const el = $('connection');
  el.dataset.state = name;
  el.textContent =
    name === 'open' ? 'connected' : name === 'reconnecting' && detail.delayMs ? `reconnecting in ${(detail.delayMs / 1000).toFixed(1)} s…` : name === 'failed' ? 'disconnected' : `${name}…`;
  if (name === 'open') {
    const { ready } = detail;
    clock.streamMs = 0;
    state.engine = ready.engine;
    state.testEngine = ready.testEngine;
    state.voice = ready.voice;
    // A server without a voice: the browser's own is the fallback.
    if (!ready.voice && state.voiceMode === 'server') setVoiceMode('browser');
    $('engine').hidden = false;
    $('engine').textContent = `engine: ${ready.engine}${ready.testEngine ? ' (test)' : ''}`;
    $('test-banner').hidden = !ready.testEngine;
    $('error-banner').hidden = true;
  }
  if (name !== 'open') setSpeaking(false);
}

function setPlaying(on) {
  state.playing = on;
  const el = $('voice-state');
  el.dataset.speaking = String(on);
  el.hidden = !on;
}

function setVoiceMode(mode) {
  state.voiceMode = mode;
  $('voice-mode').value = mode;
  speaker.enabled = mode === 'browser';
  if (mode !== 'browser') speaker.stop();
  if (mode !== 'server') stopVoice();
}

/** Silences the reply being spoken and tells the server how much of it was heard. */
function stopVoice() {
  speaker.stop();
  const heard = player.stop();
  if (heard) connection.send({ type: 'truncate', turnId: heard.turnId, audioEndMs: heard.playedMs });
}

function onAudio(message) {
  if (state.voiceMode !== 'server' || !state.voice) return;
  const view = views.get(message.turnId);
  if (view && view.turn.voiceLatencyMs === undefined && view.turn.endedAt !== undefined) {
    view.turn.voiceLatencyMs = Math.max(0, Math.round(performance.now() - view.turn.endedAt));
    view.voice.textContent = ` · first voice ${view.turn.voiceLatencyMs} ms`;
  }
  player.play(message.turnId, message.data, state.voice.sampleRate);
}

function setSpeaking(on) {
  state.speaking = on;
  const el = $('speaking');
  el.dataset.speaking = String(on);
  el.querySelector('.label').textContent = !state.microphone ? 'not listening' : on ? 'hearing speech' : 'listening';
}

/**
 * A transient error (the session went on: one bad packet, a busy server) is cleared by the
 * next sign that things work again: speech heard or a reply finished. Others stay until the
 * connection is open again.
 */
function showError(text, { transient = false } = {}) {
  const el = $('error-banner');
  el.textContent = text;
  el.dataset.transient = String(transient);
  el.hidden = false;
}

function clearTransientError() {
  const el = $('error-banner');
  if (el.dataset.transient === 'true') el.hidden = true;
}

function addTurn(message) {
  const turn = { turnId: message.turnId, source: message.source, audioMs: message.audioMs, userText: message.text, reply: '', finish: undefined, latencyMs: undefined };
  // End of speech on the page's clock: the utterance's end in stream time, or when the text was sent.
  turn.endedAt = message.source === 'audio' ? (message.endMs !== undefined ? clock.wallMs - (clock.streamMs - message.endMs) : silenceAt) : lastTypedAt;
  state.turns.push(turn);
  const li = document.createElement('li');
  li.className = 'turn';
  li.dataset.turnId = turn.turnId;
  const you = document.createElement('div');
  you.className = 'you';
  you.innerHTML = '<span class="who">You</span>';
  const said = document.createElement('span');
  said.className = 'said';
  said.textContent = message.source === 'audio' ? `(spoke for ${(message.audioMs / 1000).toFixed(1)} s)` : (message.text ?? '');
  you.append(said);
  // The server transcribes every audio turn (hello asks); the words replace the placeholder when they come.
  if (message.audioMs > 0) awaitingWords.set(turn.turnId, { turn, said });
  const reply = document.createElement('div');
  reply.className = 'reply';
  reply.innerHTML = '<span class="who">Earshot</span>';
  const text = document.createElement('span');
  text.className = 'text';
  reply.append(text);
  const meta = document.createElement('div');
  meta.className = 'meta';
  meta.textContent = 'waiting for the reply…';
  const voice = document.createElement('span');
  voice.className = 'voice-latency';
  li.append(you, reply, meta, voice);
  $('turns').append(li);
  $('empty').hidden = true;
  views.set(turn.turnId, { turn, li, text, meta, voice });
  li.scrollIntoView({ block: 'end', behavior: 'smooth' });
}

/** The user's words for an audio turn; they may come after the reply ended. A typed turn with earlier speech keeps its text after them. */
function onTranscript(message) {
  const view = awaitingWords.get(message.turnId);
  if (!view) return;
  awaitingWords.delete(message.turnId);
  const { turn, said } = view;
  if (message.error) {
    said.textContent += ` (no transcript: ${message.error.message})`;
    return;
  }
  turn.userWords = message.text;
  said.textContent = turn.source === 'audio' ? message.text : `${message.text} ${turn.userText ?? ''}`;
  said.classList.add('transcript');
}

function onDelta(message) {
  const view = views.get(message.turnId);
  if (!view) return;
  const { turn } = view;
  if (turn.latencyMs === undefined && turn.endedAt !== undefined) {
    turn.latencyMs = Math.max(0, Math.round(performance.now() - turn.endedAt));
    view.meta.textContent = `first reply ${turn.latencyMs} ms after ${turn.source === 'audio' ? 'you stopped speaking' : 'you sent it'}`;
  }
  turn.reply += message.text;
  view.text.textContent = turn.reply;
  speaker.feed(turn.turnId, message.text);
}

function onEnd(turnId, finish, detail) {
  const view = views.get(turnId);
  if (!view) return;
  const { turn } = view;
  turn.finish = finish;
  view.li.dataset.finish = finish;
  if (!turn.reply) view.meta.textContent = finish === 'stop' ? 'empty reply' : '';
  if (finish !== 'stop') view.meta.textContent += `${view.meta.textContent ? ' · ' : ''}${finish}${detail ? `: ${detail}` : ''}`;
  speaker.finish(turnId, finish);
  player.turnEnded(turnId);
  if (turn.reply) $('announcer').textContent = turn.reply;
  views.delete(turnId);
}

const handlers = {
  ready: () => {},
  vad: (m) => {
    setSpeaking(m.state === 'speech');
    if (m.state === 'silence') silenceAt = performance.now();
    else {
      clearTransientError();
      // Barge-in: the server cancels the reply; the page stops speaking the old one at once.
      stopVoice();
    }
  },
  turn: addTurn,
  transcript: onTranscript,
  delta: onDelta,
  audio: onAudio,
  truncated: (m) => {
    state.truncated.push(m);
    const li = document.querySelector(`#turns .turn[data-turn-id="${CSS.escape(m.turnId)}"]`);
    if (li) li.querySelector('.meta').textContent += ` · heard ${(m.audioEndMs / 1000).toFixed(1)} s`;
  },
  done: (m) => {
    onEnd(m.turnId, m.finish);
    if (m.finish === 'stop') clearTransientError();
  },
  error: (m) => {
    state.errors.push({ code: m.code, message: m.message, fatal: m.fatal });
    if (m.turnId) onEnd(m.turnId, 'error', m.message);
    else if (m.code === 'unauthorized') askForKey(m.message);
    else showError(`Server error (${m.code}): ${m.message}`, { transient: !m.fatal });
  },
  busy: (m) => {
    if (m.turnId) onEnd(m.turnId, 'error', 'server busy');
    showError(`The server is busy; try again in ${Math.ceil(m.retryAfterMs / 1000)} s.`, { transient: true });
  },
};

function onPacket(bytes, durationMs) {
  if (!connection.sendAudio(bytes)) {
    state.droppedFrames = connection.droppedFrames;
    return;
  }
  state.sentFrames++;
  clock.streamMs += durationMs;
  clock.wallMs = performance.now();
}

async function toggleMicrophone() {
  const button = $('mic');
  button.disabled = true;
  try {
    if (capture) {
      await capture.stop();
      capture = undefined;
      state.microphone = false;
      // Whatever was being said when the microphone stopped is a complete utterance.
      connection.send({ type: 'commit' });
    } else {
      capture = new Capture({ codec: state.codec, sampleRate: state.sampleRate }, onPacket);
      await capture.start();
      state.microphone = true;
    }
  } catch (err) {
    capture = undefined;
    state.microphone = false;
    showError(`Microphone unavailable: ${err.message}`);
  } finally {
    button.disabled = false;
    button.setAttribute('aria-pressed', String(state.microphone));
    button.textContent = state.microphone ? 'Stop microphone' : 'Start microphone';
    setSpeaking(state.speaking);
  }
}

function sendText(event) {
  event.preventDefault();
  const input = $('text');
  const text = input.value.trim();
  if (!text) return;
  if (!connection.send({ type: 'text', text })) return showError('Not connected; the message was not sent.');
  lastTypedAt = performance.now();
  stopVoice();
  input.value = '';
}

function askForKey(reason) {
  sessionStorage.removeItem(KEY_STORAGE);
  showError(`Server error (unauthorized): ${reason}. Enter the server's API key below (or open this page as ${location.pathname}?token=YOUR_KEY).`);
  $('key-form').hidden = false;
  $('key').focus();
}

function useKey(event) {
  event.preventDefault();
  const key = $('key').value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY_STORAGE, key);
  $('key').value = '';
  $('key-form').hidden = true;
  $('error-banner').hidden = true;
  connection.restart({ ...connection.hello, token: key });
}

function interrupt() {
  stopVoice();
  connection.send({ type: 'cancel' });
}

async function main() {
  const format = await chooseCodec(params.get('codec'));
  state.codec = format.codec;
  state.sampleRate = format.sampleRate;
  $('codec').hidden = false;
  $('codec').textContent = format.codec === 'opus' ? 'Opus (WebCodecs)' : `PCM ${format.sampleRate / 1000} kHz`;
  const hello = { type: 'hello', version: 1, codec: format.codec, sampleRate: format.sampleRate, channels: 1, transcribe: true };
  // PCM16 at 24 kHz: Web Audio plays it as it comes, without a decoder.
  if (state.voiceMode === 'server') hello.voice = { codec: 'pcm16', sampleRate: 24000 };
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (key) hello.token = key;
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/stream`;
  connection = new Connection(url, hello, {
    onState: setConnection,
    onMessage: (m) => handlers[m.type]?.(m),
  });
  connection.connect();
  $('mic').addEventListener('click', toggleMicrophone);
  $('interrupt').addEventListener('click', interrupt);
  $('text-form').addEventListener('submit', sendText);
  $('key-form').addEventListener('submit', useKey);
  const voiceMode = $('voice-mode');
  voiceMode.querySelector('option[value="browser"]').disabled = !speaker.available;
  voiceMode.addEventListener('change', () => setVoiceMode(voiceMode.value));
  setVoiceMode(state.voiceMode);
  // Browsers start audio only after a gesture: any click or key unlocks the player.
  for (const type of ['pointerdown', 'keydown']) addEventListener(type, () => player.unlock(), { capture: true });
  addEventListener('pagehide', () => connection.close());
}

main();
