/**
 * Cross-site WebSocket hijacking guard. Browsers always send Origin on a websocket
 * handshake and page scripts cannot forge it; other clients usually send none. With an
 * allow-list set, a browser may connect only from a listed origin or from the page this
 * server serves itself (Origin host = Host header).
 */
export function originAllowed(headers: Record<string, string>, allowed: readonly string[]): boolean {
  const origin = headers['origin'];
  if (origin === undefined || allowed.length === 0 || allowed.includes('*')) return true;
  if (allowed.includes(origin)) return true;
  const host = headers['host'];
  if (!host) return false;
  try {
    return new URL(origin).host.toLowerCase() === host.toLowerCase();
  } catch {
    return false;
  }
}
