/** Server-sent events as OpenAI streams them: one `data:` JSON per event, `data: [DONE]` at the end. */
import type { HttpResponse } from '../transport/types.js';

export class SseStream {
  private readonly res: HttpResponse;
  private readonly maxBufferedBytes: number;
  private opened = false;

  /** A reader that lets more than `maxBufferedBytes` pile up is dropped: the abort then stops the engine's work for it. */
  constructor(res: HttpResponse, maxBufferedBytes: number) {
    this.res = res;
    this.maxBufferedBytes = maxBufferedBytes;
  }

  get started(): boolean {
    return this.opened;
  }

  open(): void {
    if (this.opened) return;
    this.opened = true;
    // x-accel-buffering: reverse proxies (nginx) would otherwise hold tokens back.
    this.res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
  }

  send(event: unknown): void {
    this.open();
    this.res.write(`data: ${JSON.stringify(event)}\n\n`);
    if (this.res.bufferedBytes > this.maxBufferedBytes) this.res.close();
  }

  done(): void {
    this.open();
    this.res.end('data: [DONE]\n\n');
  }

  /** Ends after the last event, for streams whose last event says they are complete (transcriptions). */
  end(): void {
    this.open();
    this.res.end();
  }

  /** Ends without [DONE], as OpenAI does after an error event: the client must not take the answer as complete. */
  fail(error: unknown): void {
    this.send({ error });
    this.res.end();
  }
}
