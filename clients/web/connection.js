/**
 * The native /v1/stream protocol in the browser: msgpack control messages (the vendored
 * global `MessagePack`), audio as raw frames (tag byte 0x00 + packet), and reconnection
 * with exponential backoff, re-sending `hello` for a new session each time.
 */
const RAW_AUDIO_TAG = 0x00;
/** Live audio is dropped, not queued, once this much is waiting for a slow network. */
const MAX_BUFFERED_BYTES = 256 * 1024;
const INITIAL_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;
/** Retrying these would only fail the same way. */
const PERMANENT = new Set(['unauthorized', 'forbidden', 'unsupported', 'bad_message', 'protocol_order']);

export class Connection {
  /**
   * hello: the `hello` message; onMessage(message); onState(state, detail) where state is
   * 'connecting' | 'open' | 'reconnecting' | 'failed'.
   */
  constructor(url, hello, { onMessage, onState }) {
    this.url = url;
    this.hello = hello;
    this.onMessage = onMessage;
    this.onState = onState;
    this.attempt = 0;
    this.open = false;
    this.stopped = false;
    this.scratch = new Uint8Array(4096);
    this.droppedFrames = 0;
  }

  connect() {
    this.onState(this.attempt === 0 ? 'connecting' : 'reconnecting', {});
    const ws = new WebSocket(this.url);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => ws.send(MessagePack.encode(this.hello));
    ws.onmessage = (event) => {
      if (!(event.data instanceof ArrayBuffer)) return;
      const message = MessagePack.decode(new Uint8Array(event.data));
      if (message.type === 'ready') {
        this.open = true;
        this.attempt = 0;
        this.onState('open', { ready: message });
      }
      if (message.type === 'error' && message.fatal && PERMANENT.has(message.code)) this.stopped = true;
      this.onMessage(message);
    };
    ws.onclose = (event) => {
      this.open = false;
      if (this.ws !== ws) return;
      if (this.stopped) return this.onState('failed', { code: event.code, reason: event.reason });
      const ceiling = Math.min(MAX_DELAY_MS, INITIAL_DELAY_MS * 2 ** this.attempt++);
      const delayMs = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
      this.onState('reconnecting', { delayMs, code: event.code, reason: event.reason });
      this.timer = setTimeout(() => this.connect(), delayMs);
    };
  }

  /** Starts over with a new hello (a key the user just gave), after a permanent failure too. */
  restart(hello) {
    clearTimeout(this.timer);
    this.hello = hello;
    this.stopped = false;
    this.attempt = 0;
    const old = this.ws;
    this.ws = undefined;
    old?.close(1000);
    this.connect();
  }

  /** Returns false when the packet was dropped (not connected, or the network is behind). */
  sendAudio(payload) {
    if (!this.open || this.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      if (this.open) this.droppedFrames++;
      return false;
    }
    if (payload.length + 1 > this.scratch.length) this.scratch = new Uint8Array(payload.length + 1);
    // send() copies the bytes, so one buffer serves every frame.
    this.scratch[0] = RAW_AUDIO_TAG;
    this.scratch.set(payload, 1);
    this.ws.send(this.scratch.subarray(0, payload.length + 1));
    return true;
  }

  send(message) {
    if (!this.open) return false;
    this.ws.send(MessagePack.encode(message));
    return true;
  }

  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.open) this.send({ type: 'bye' });
    this.ws?.close(1000);
  }
}
