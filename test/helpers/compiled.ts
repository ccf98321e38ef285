/**
 * The server's sources compiled to JavaScript once per test process (esbuild, which tsx compiles
 * each file with; file by file, the same tree), for tests that run server/main.ts as a child
 * process. Under tsx every import of that child, and of each thread and synthesis process it
 * starts (each registers tsx again), goes through loader hooks on a second thread: ~2 s of CPU
 * for the server to start and ~1 s more per thread or process. From JavaScript, server/threads.ts
 * starts threads and processes under plain node. The tree lives under node_modules/.cache, so
 * packages resolve as from the sources; the server's other files (the MLX worker's Python) are
 * copied beside it, and clients/ (the web page the server serves) is linked. A killed test process
 * leaves its tree behind: the next compile removes it.
 */
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const PREFIX = 'earshot-compiled-';
const OWNER = new RegExp(`^${PREFIX}(\\d+)-`);

let compiled: Promise<string> | undefined;

/** The directory holding the compiled tree: run `node <dir>/server/main.js`. Removed when this process exits. */
export function compiledServer(): Promise<string> {
  compiled ??= compile();
  return compiled;
}

/** A file of the compiled tree, e.g. compiledFile('server', 'main.js'). */
export async function compiledFile(...parts: string[]): Promise<string> {
  return join(await compiledServer(), ...parts);
}

async function compile(): Promise<string> {
  const cache = join(ROOT, 'node_modules', '.cache');
  await mkdir(cache, { recursive: true });
  await removeOrphans(cache);
  const dir = await mkdtemp(join(cache, `${PREFIX}${process.pid}-`));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const sources: string[] = [];
  for (const room of ['server', 'protocol']) {
    for (const file of await readdir(join(ROOT, room), { recursive: true })) {
      if (file.endsWith('.ts') && !file.endsWith('.d.ts')) sources.push(join(ROOT, room, file));
    }
  }
  await build({ entryPoints: sources, outdir: dir, outbase: ROOT, format: 'esm', platform: 'node', logLevel: 'silent' });
  await cp(join(ROOT, 'server'), join(dir, 'server'), { recursive: true, filter: (source) => !source.endsWith('.ts') });
  await symlink(join(ROOT, 'clients'), join(dir, 'clients'));
  await writeFile(join(dir, 'package.json'), '{ "type": "module" }\n');
  return dir;
}

/** Trees of test processes that were killed (their exit handler never ran): named by pid, removed once that pid is gone. */
async function removeOrphans(cache: string): Promise<void> {
  for (const name of await readdir(cache)) {
    const pid = Number(OWNER.exec(name)?.[1]);
    if (pid && !alive(pid)) await rm(join(cache, name), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
