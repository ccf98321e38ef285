/**
 * The server's address as people have it: the http(s) base URL the REST examples use
 * (EARSHOT_URL), an OpenAI-style `/v1` base, or the websocket URL of /v1/stream itself.
 */
const SCHEMES: Record<string, string> = { 'http:': 'ws:', 'https:': 'wss:', 'ws:': 'ws:', 'wss:': 'wss:' };

/** The ws(s):// URL of /v1/stream for `address`; throws a TypeError saying what an address looks like. */
export function streamUrl(address: string): string {
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    throw new TypeError(`'${address}' is not a URL; give the server's address, e.g. http://127.0.0.1:8080`);
  }
  const scheme = SCHEMES[url.protocol];
  if (!scheme) throw new TypeError(`'${address}' is not an http(s):// or ws(s):// URL; give the server's address, e.g. http://127.0.0.1:8080`);
  url.protocol = scheme;
  const path = url.pathname.replace(/\/+$/, '');
  if (path === '' || path === '/v1') url.pathname = '/v1/stream';
  return url.href;
}
