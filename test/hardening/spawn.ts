/**
 * `server/main.ts` as a child process, as an operator runs it; the URL comes from its JSON
 * start-up log line. It runs compiled (test/helpers/compiled.ts), ~2 s of CPU sooner than
 * through tsx, with its threads and synthesis processes under plain node too; config.test
 * runs it from its sources.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { compiledFile } from '../helpers/compiled.js';

export interface Spawned {
  child: ChildProcess;
  url: string;
  stderr: () => string;
}

/** `detached`: the server leads a process group of its own, so a test can signal the group as a terminal's Ctrl-C does. */
export async function spawnServer(args: string[], { detached = false } = {}): Promise<Spawned> {
  const main = await compiledFile('server', 'main.js');
  const child = spawn(process.execPath, [main, '--port', '0', '--engine', 'echo', ...args], { stdio: ['ignore', 'ignore', 'pipe'], detached });
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      for (const line of stderr.split('\n')) {
        if (!line.includes('earshot listening on')) continue;
        const started = JSON.parse(line) as { url: string; transport: string };
        // A test that asks for uws must not quietly run on the ws fallback.
        if (/--transport[= ]uws/.test(args.join(' ')) && !started.transport.startsWith('uws')) {
          child.kill('SIGKILL');
          reject(new Error(`asked for the uws transport but ${started.transport} runs: no uWebSockets.js build loaded`));
        }
        resolve(started.url);
      }
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${stderr}`)));
  });
  return { child, url, stderr: () => stderr };
}
