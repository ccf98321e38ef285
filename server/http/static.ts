/** Serves the browser client (clients/web) and the one vendored browser module it needs. */
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EarshotError } from '../../protocol/errors.js';
import type { HttpRoute } from './router.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WEB = join(ROOT, 'clients', 'web');
const VENDOR: Record<string, string> = { '/vendor/msgpack.min.js': join(ROOT, 'node_modules', '@msgpack', 'msgpack', 'dist.umd', 'msgpack.min.js') };
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.ico': 'image/x-icon',
};

function resolvePath(path: string): string | undefined {
  if (VENDOR[path]) return VENDOR[path];
  const relative = path === '/' ? 'index.html' : decodeURIComponent(path.slice(1));
  const full = normalize(join(WEB, relative));
  return full.startsWith(WEB + sep) ? full : undefined;
}

export function staticRoutes(): HttpRoute[] {
  return [
    {
      method: 'GET',
      path: '/',
      prefix: true,
      handle: async (req, res) => {
        const file = resolvePath(req.path);
        const type = file ? TYPES[extname(file)] : undefined;
        if (!file || !type) throw new EarshotError('not_found', `no file at ${req.path}`);
        let body: Buffer;
        try {
          body = await readFile(file);
        } catch {
          throw new EarshotError('not_found', `no file at ${req.path}`);
        }
        res.writeHead(200, { 'content-type': type, 'content-length': String(body.length), 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
        res.end(body);
      },
    },
  ];
}
