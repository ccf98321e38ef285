import { EarshotError } from '../../../protocol/errors.js';

/** A single event line longer than this is not a chat stream: stop before buffering without bound. */
const MAX_LINE_CHARS = 1 << 20;
const LINE_END = /\r\n|\r|\n/;

/**
 * Yields the `data` of each server-sent event, per the WHATWG event-stream rules that a chat
 * stream uses: CR, LF or CRLF line ends, `:` comments, several `data:` lines joined by LF,
 * an event dispatched at a blank line, an unfinished event at end of stream dropped.
 */
export async function* sseData(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = '';
  let data: string[] = [];
  for await (const chunk of body) {
    pending += decoder.decode(chunk, { stream: true });
    // A CR at the very end may be the first half of a CRLF still in flight.
    const cut = pending.endsWith('\r') ? pending.length - 1 : pending.length;
    const lines = pending.slice(0, cut).split(LINE_END);
    pending = lines.pop()! + pending.slice(cut);
    if (pending.length > MAX_LINE_CHARS) throw new EarshotError('engine_error', 'upstream sent an event-stream line over 1 MiB');
    for (const line of lines) {
      if (line === '') {
        if (data.length > 0) yield data.join('\n');
        data = [];
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      if (field !== 'data') continue;
      const value = colon < 0 ? '' : line.slice(colon + 1);
      data.push(value.startsWith(' ') ? value.slice(1) : value);
    }
  }
}
