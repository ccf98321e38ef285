/**
 * Hooks for test/loader/register.mjs. A relative `.js` import from a .ts module that names a
 * .ts file (this repository's style, which tsc's NodeNext checks) resolves to it without a
 * lookup; a .ts module is compiled with the repository's tsconfig, its result cached under the
 * system temp directory by a hash of what it depends on.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transform, version } from 'esbuild';

const { compilerOptions } = JSON.parse(readFileSync(new URL('../../tsconfig.json', import.meta.url), 'utf8'));
const options = { loader: 'ts', format: 'esm', sourcemap: 'inline', target: `node${process.versions.node}`, tsconfigRaw: { compilerOptions } };
const cacheDir = join(tmpdir(), `earshot-ts-${process.getuid?.() ?? 'user'}`);
mkdirSync(cacheDir, { recursive: true });
const salt = `${version} ${JSON.stringify(options)}`;

export async function resolve(specifier, context, next) {
  if (specifier.endsWith('.js') && specifier.startsWith('.') && context.parentURL?.endsWith('.ts')) {
    const ts = new URL(`${specifier.slice(0, -3)}.ts`, context.parentURL);
    if (existsSync(ts)) return { url: ts.href, format: 'module', shortCircuit: true };
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return next(url, context);
  const path = fileURLToPath(url);
  const source = readFileSync(path, 'utf8');
  const cached = join(cacheDir, createHash('sha1').update(salt).update(path).update(source).digest('hex'));
  let code;
  try {
    code = readFileSync(cached, 'utf8');
  } catch {
    code = (await transform(source, { ...options, sourcefile: path })).code;
    // Another test process may write the same entry at once: each writes its own file, then renames it into place.
    const partial = `${cached}.${process.pid}`;
    writeFileSync(partial, code);
    renameSync(partial, cached);
  }
  return { format: 'module', source: code, shortCircuit: true };
}
