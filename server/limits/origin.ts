/**
 * Cross-site WebSocket hijacking guard. Browsers always send Origin on a websocket
 * handshake and page scripts cannot forge it; other clients usually send none. A browser
 * may connect from a listed origin (`*` lists all) or from the page this server serves
 * itself: Origin host = Host header, under a name that cannot be rebound to a foreign site
 * (a loopback name or the address the server listens on). Without that last condition DNS
 * rebinding would pass a foreign page off as ours: its Origin and Host would both name the
 * attacker's domain, resolved to this server.
 */
const LOOPBACK_NAME = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;

export function originAllowed(headers: Record<string, string>, allowed: readonly string[], listenHost: string): boolean {
  const origin = headers['origin'];
  if (origin === undefined || allowed.includes('*') || allowed.includes(origin)) return true;
  const host = headers['host']?.toLowerCase();
  if (!host) return false;
  try {
    if (new URL(origin).host.toLowerCase() !== host) return false;
    const name = new URL(`http://${host}`).hostname;
    return LOOPBACK_NAME.test(name) || name === listenHost.toLowerCase();
  } catch {
    return false;
  }
}
