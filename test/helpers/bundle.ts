/**
 * A TypeScript entry compiled once into one ES module, for a test that runs it as a child
 * process many times. Under tsx every import of a child (its own modules and each of zod's ~100
 * files) goes through loader hooks on a second thread: the CLI then takes ~1.5 s of CPU to
 * start; bundled with its packages, under plain node, ~0.3 s. esbuild is what tsx compiles each
 * file with. For entries that find no file beside themselves (no workers, no assets by path).
 */
import { build } from 'esbuild';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Bundle {
  /** The bundle's path: run it with `node <path>`. */
  path: string;
  remove: () => Promise<void>;
}

/** `entry` is a file URL; `import.meta.url` in the bundle is the bundle's, so an entry that runs itself when it is `process.argv[1]` still does. */
export async function bundle(entry: URL): Promise<Bundle> {
  const dir = await mkdtemp(join(tmpdir(), 'earshot-bundle-'));
  const path = join(dir, 'entry.mjs');
  await build({
    entryPoints: [fileURLToPath(entry)],
    outfile: path,
    bundle: true,
    platform: 'node',
    format: 'esm',
    logLevel: 'silent',
    // CommonJS packages (ws) require Node's modules; an ES module has no `require` of its own.
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
  });
  return { path, remove: () => rm(dir, { recursive: true, force: true }) };
}
