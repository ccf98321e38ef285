/**
 * earshot: talk to an Earshot server from the command line. Streams a WAV or Ogg Opus file
 * (or raw PCM16 from stdin) over /v1/stream and prints the replies as they stream.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import type { ServerMessage } from '../../protocol/native.js';
import { wavHeader16 } from '../../server/audio/wav.js';
import { AudioFormatError, fileSource, pcmStreamSource, type AudioSource } from './audio.js';
import { EarshotClient } from './client.js';
import { EarshotConnectionError, EarshotServerError } from './errors.js';
import { settle, streamAudio } from './stream.js';
import type { Turn } from './turn.js';
import { streamUrl } from './url.js';

/** Spoken replies come as PCM16 at this rate: what a WAV file holds as is. */
const VOICE_RATE = 24_000;

export const EXIT = { ok: 0, usage: 1, connection: 2, server: 3, interrupted: 130 } as const;

const DEFAULT_URL = 'http://127.0.0.1:8080';

const OPTIONS: [string, string][] = [
  ['--url URL', `the server: its http(s) address, /v1/stream added (env EARSHOT_URL;\ndefault ${DEFAULT_URL}), or a ws(s):// URL of /v1/stream`],
  ['--api-key KEY', 'API key, when the server has --api-keys (env EARSHOT_API_KEY)'],
  ['--fast', 'send audio as fast as the server takes it, not in real time\n(also turns barge-in off: a file cannot interrupt its own replies;\nsentences that arrive while a reply runs are answered together\nwhen the server runs with --coalesce, its default)'],
  ['--pcm-rate HZ', 'input is raw PCM16 little-endian mono at HZ (8000/16000/24000/48000)'],
  ['--text TEXT', 'send a typed turn (alone, or before the audio)'],
  ['--system TEXT', 'system prompt for the session'],
  ['--json', 'print one JSON object per server event on stdout'],
  ['--save-audio DIR', "ask for spoken replies and write each one's audio to DIR/TURN.wav\n(PCM16 24 kHz mono; DIR is created)"],
  ['--voice NAME', "the server voice to speak with (its own or OpenAI's names)"],
  ['--no-transcripts', "do not ask the server to transcribe what you say\n(by default each spoken turn's words are shown)"],
  ['-h, --help', 'this text'],
];

/** Option rows with every description in one column, set by the longest option. */
function optionRows(): string {
  const width = Math.max(...OPTIONS.map(([flag]) => flag.length)) + 2;
  return OPTIONS.map(([flag, text]) => `  ${flag.padEnd(width)}${text.split('\n').join(`\n  ${' '.repeat(width)}`)}`).join('\n');
}

const USAGE = `Usage: earshot [options] [FILE | -]

Streams FILE, or raw PCM16 from stdin with '-' and --pcm-rate, to an Earshot server
and prints the replies as they stream. FILE may be WAV (PCM 8/16/24/32-bit or float,
any rate, any channels; sent as 16 kHz mono), MP3 (likewise) or Ogg Opus (sent as is).
Not read: FLAC, AAC/M4A, Ogg Vorbis, WebM; convert those first (ffmpeg -i in out.wav).

Options:
${optionRows()}

--token and EARSHOT_TOKEN still work for the key, but are deprecated.

Exit codes: 0 ok, 1 usage or unreadable input, 2 cannot connect or connection lost,
3 the server reported an error.`;

class UsageError extends Error {}

interface CliArgs {
  url: string;
  /** Where the URL came from, for messages about it. */
  urlFrom: string;
  token: string | undefined;
  /** Set when the key came by an old name. */
  deprecated: string | undefined;
  fast: boolean;
  pcmRate: number | undefined;
  text: string | undefined;
  system: string | undefined;
  json: boolean;
  transcripts: boolean;
  saveAudio: string | undefined;
  voice: string | undefined;
  input: string | undefined;
}

function parse(argv: string[], env: NodeJS.ProcessEnv): CliArgs | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        url: { type: 'string' },
        'api-key': { type: 'string' },
        token: { type: 'string' },
        fast: { type: 'boolean', default: false },
        'pcm-rate': { type: 'string' },
        text: { type: 'string' },
        system: { type: 'string' },
        json: { type: 'boolean', default: false },
        'no-transcripts': { type: 'boolean', default: false },
        'save-audio': { type: 'string' },
        voice: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (positionals.length > 1) throw new UsageError(`one input at a time, got ${positionals.length}`);
  const input = positionals[0];
  if (input === undefined && values.text === undefined) throw new UsageError('give an audio file, - for stdin, or --text');
  const pcmRate = values['pcm-rate'] === undefined ? undefined : Number(values['pcm-rate']);
  if (pcmRate !== undefined && !Number.isInteger(pcmRate)) throw new UsageError(`--pcm-rate must be a number of Hz, got '${values['pcm-rate']}'`);
  if (input === '-' && pcmRate === undefined) throw new UsageError('stdin carries raw PCM16: give its rate with --pcm-rate');
  const [address, urlFrom] = values.url !== undefined ? [values.url, '--url'] : env.EARSHOT_URL ? [env.EARSHOT_URL, 'EARSHOT_URL'] : [DEFAULT_URL, 'the default'];
  let url: string;
  try {
    url = streamUrl(address);
  } catch (err) {
    throw new UsageError(`${urlFrom}: ${(err as Error).message}`);
  }
  return {
    url,
    urlFrom,
    token: values['api-key'] ?? values.token ?? (env.EARSHOT_API_KEY || undefined) ?? (env.EARSHOT_TOKEN || undefined),
    deprecated:
      values['api-key'] === undefined && values.token !== undefined
        ? '--token is deprecated; use --api-key'
        : values['api-key'] === undefined && values.token === undefined && !env.EARSHOT_API_KEY && env.EARSHOT_TOKEN
          ? 'EARSHOT_TOKEN is deprecated; use EARSHOT_API_KEY'
          : undefined,
    fast: values.fast,
    pcmRate,
    text: values.text,
    system: values.system,
    json: values.json,
    transcripts: !values['no-transcripts'],
    saveAudio: values['save-audio'],
    voice: values.voice,
    input,
  };
}

async function openSource(args: CliArgs, stdin: Readable): Promise<AudioSource | undefined> {
  if (args.input === undefined) return undefined;
  if (args.input === '-') return pcmStreamSource(stdin, args.pcmRate!);
  let bytes: Buffer;
  try {
    bytes = await readFile(args.input);
  } catch (err) {
    throw new UsageError(`cannot read ${args.input}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (args.pcmRate !== undefined) return pcmStreamSource(Readable.from([bytes]), args.pcmRate);
  return await fileSource(bytes);
}

interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: Readable;
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

/**
 * Human output: reply text on stdout (pipeable), everything else on stderr. Replies print one
 * at a time, in order: a reply announced while an earlier one is still printing waits for it,
 * or the words of both would interleave whenever their deltas arrive together. Returns a
 * promise for the end of what has been printed so far.
 */
function printHuman(client: EarshotClient, io: Io): () => Promise<void> {
  const say = (line: string) => io.stderr.write(`${line}\n`);
  let printed = Promise.resolve();
  client.on('ready', (m) => {
    say(`connected: session ${m.sessionId}, engine ${m.engine}${m.testEngine ? ' (TEST ENGINE: replies describe the audio, no model runs)' : ''}`);
  });
  client.on('reply', (turn) => {
    printed = printed.then(async () => {
      const what = turn.info.source === 'audio' ? `${turn.info.audioMs} ms of audio` : 'typed text';
      say(`› turn ${turn.turnId} (${what})`);
      for await (const piece of turn.deltas()) io.stdout.write(piece);
      const result = await turn.done;
      io.stdout.write('\n');
      const latency = turn.firstDeltaAt === undefined ? '' : `, first text after ${Math.round(turn.firstDeltaAt - turn.announcedAt)} ms`;
      if (result.finish !== 'stop') say(`  [${result.finish}${result.error ? `: ${result.error.code} ${result.error.message}` : ''}${latency}]`);
      // The user's words (asked for by default) after the reply, so the next turn's lines never split them.
      const heard = await turn.transcript;
      if (heard) say(heard.error ? `  (no transcript for ${turn.turnId}: ${heard.error.message})` : `  you said (${turn.turnId}): ${heard.text}`);
    });
  });
  // A fatal error ends the session; main() reports it once, with the exit code.
  client.on('error', (m) => m.fatal || say(`server error ${m.code}: ${m.message}`));
  client.on('busy', (m) => say(`server busy, retry after ${m.retryAfterMs} ms`));
  return () => printed;
}

/** Writes each reply's spoken audio to `dir` as it ends; returns a promise for the files written so far. */
function saveAudio(client: EarshotClient, dir: string, say: (line: string) => void): () => Promise<void> {
  const writes: Promise<void>[] = [mkdir(dir, { recursive: true }).then(() => undefined)];
  const save = async (turn: Turn) => {
    const frames: Uint8Array[] = [];
    for await (const frame of turn.audio()) frames.push(frame);
    if (frames.length === 0) return;
    const pcm = Buffer.concat(frames);
    const path = join(dir, `${turn.turnId}.wav`);
    await writes[0];
    await writeFile(path, Buffer.concat([wavHeader16(VOICE_RATE, pcm.length), pcm]));
    const firstAudio = turn.firstAudioAt === undefined ? '' : `, first audio after ${Math.round(turn.firstAudioAt - turn.announcedAt)} ms`;
    say(`  voice of ${turn.turnId}: ${path} (${(pcm.length / 2 / VOICE_RATE).toFixed(1)} s${firstAudio})`);
  };
  client.on('reply', (turn) => writes.push(save(turn)));
  return async () => {
    await Promise.all(writes);
  };
}

function printJson(client: EarshotClient, io: Io): void {
  const types: ServerMessage['type'][] = ['ready', 'vad', 'turn', 'transcript', 'delta', 'done', 'error', 'busy'];
  for (const type of types) client.on(type, (m: ServerMessage) => io.stdout.write(`${JSON.stringify(m)}\n`));
}

export async function main(argv: string[], io: Io): Promise<number> {
  let args: CliArgs | 'help';
  let source: AudioSource | undefined;
  let client: EarshotClient;
  try {
    args = parse(argv, io.env);
    if (args === 'help') {
      io.stdout.write(`${USAGE}\n`);
      return EXIT.ok;
    }
    if (args.deprecated) io.stderr.write(`earshot: ${args.deprecated}\n`);
    source = await openSource(args, io.stdin);
    client = new EarshotClient({
      url: args.url,
      token: args.token,
      codec: source?.codec ?? 'pcm16',
      sampleRate: source?.sampleRate ?? 16000,
      channels: source?.channels ?? 1,
      system: args.system,
      vad: args.fast ? { bargeIn: false } : undefined,
      transcribe: args.transcripts,
      voice: args.saveAudio !== undefined || args.voice !== undefined ? { codec: 'pcm16', sampleRate: VOICE_RATE, name: args.voice } : undefined,
    });
  } catch (err) {
    if (!(err instanceof UsageError || err instanceof AudioFormatError || err instanceof TypeError)) throw err;
    io.stderr.write(`earshot: ${err.message}\n${err instanceof AudioFormatError ? '' : '(see earshot --help)\n'}`);
    return EXIT.usage;
  }
  let serverErrors = 0;
  let lost: EarshotConnectionError | EarshotServerError | undefined;
  client.on('error', () => serverErrors++);
  client.on('closed', (error) => (lost = error));
  let printed: () => Promise<void> = () => Promise.resolve();
  if (args.json) printJson(client, io);
  else printed = printHuman(client, io);
  if (args.saveAudio !== undefined) {
    const text = printed;
    const saved = saveAudio(client, args.saveAudio, (line) => io.stderr.write(`${line}\n`));
    printed = async () => {
      await text();
      await saved();
    };
  }
  try {
    await client.connect();
    if (args.text !== undefined) client.text(args.text);
    if (source) await streamAudio(client, source, { fast: args.fast, signal: io.signal });
    if (io.signal?.aborted) {
      await client.close();
      await printed();
      return EXIT.interrupted;
    }
    await settle(client);
    await client.close();
    await printed();
  } catch (caught) {
    await client.close();
    // Closing ended every open turn, so this is the last of the replies' output.
    await printed();
    // A dropped connection surfaces first as a failed send; the close says why.
    const err = lost ?? caught;
    if (err instanceof EarshotServerError) {
      io.stderr.write(`earshot: the server ended the session: ${err.message}\n`);
      return EXIT.server;
    }
    if (err instanceof EarshotConnectionError) {
      io.stderr.write(`earshot: ${err.message}${args.urlFrom === 'EARSHOT_URL' ? ' (the address is EARSHOT_URL)' : ''}\n`);
      return EXIT.connection;
    }
    throw err;
  }
  return serverErrors > 0 ? EXIT.server : EXIT.ok;
}

export async function run(): Promise<void> {
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, signal: controller.signal });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await run();
