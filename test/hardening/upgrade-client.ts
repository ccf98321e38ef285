/** Websocket handshakes for hardening tests: the HTTP answer of a refused upgrade, or the open socket. */
import WebSocket from 'ws';

export type Handshake = { ok: true; socket: WebSocket } | { ok: false; status: number; headers: Record<string, string | string[] | undefined>; body: string };

export function handshake(url: string, headers: Record<string, string> = {}, protocols: string[] = []): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, protocols, { headers });
    socket.once('open', () => resolve({ ok: true, socket }));
    socket.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ ok: false, status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    socket.once('error', (err) => reject(err));
  });
}

export function closed(socket: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}
