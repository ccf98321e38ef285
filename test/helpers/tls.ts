import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** A self-signed certificate for localhost in a temporary directory (removed by `dispose`). */
export async function selfSignedCert(): Promise<{ cert: string; key: string; dispose: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'earshot-tls-'));
  const cert = join(dir, 'c.pem');
  const key = join(dir, 'k.pem');
  await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost']);
  return { cert, key, dispose: () => rm(dir, { recursive: true, force: true }) };
}
