/**
 * Microphone → 20 ms packets of the session's codec: Opus from WebCodecs' AudioEncoder where
 * the browser has it, PCM16 at 16 kHz otherwise (or when the page is opened with ?codec=pcm).
 */
const FRAME_MS = 20;
const OPUS = { codec: 'opus', sampleRate: 48000, numberOfChannels: 1, bitrate: 32000, opus: { frameDuration: FRAME_MS * 1000 } };
const PCM = { codec: 'pcm16', sampleRate: 16000 };

/** Decides the codec before connecting, since `hello` names it. */
export async function chooseCodec(forced) {
  if (forced === 'pcm' || typeof AudioEncoder === 'undefined') return PCM;
  try {
    const { supported } = await AudioEncoder.isConfigSupported(OPUS);
    if (supported) return { codec: 'opus', sampleRate: OPUS.sampleRate };
  } catch {
    // an encoder that cannot even answer is no encoder: use PCM
  }
  return PCM;
}

export class Capture {
  /** onPacket(bytes, durationMs): bytes are only valid during the call. */
  constructor(format, onPacket) {
    this.format = format;
    this.onPacket = onPacket;
    this.pcm = new Uint8Array((format.sampleRate / 1000) * FRAME_MS * 2);
    this.pcmView = new DataView(this.pcm.buffer);
    this.opusScratch = new Uint8Array(4000);
    this.timestampUs = 0;
  }

  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    this.context = new AudioContext({ latencyHint: 'interactive' });
    await this.context.audioWorklet.addModule(new URL('./worklet.js', import.meta.url));
    if (this.format.codec === 'opus') this.encoder = this.createEncoder();
    const source = this.context.createMediaStreamSource(this.stream);
    this.node = new AudioWorkletNode(this.context, 'earshot-capture', {
      numberOfOutputs: 1,
      processorOptions: { targetRate: this.format.sampleRate },
    });
    this.node.port.onmessage = (event) => this.onFrame(event.data);
    // A silent path to the destination keeps the graph pulling the worklet in every browser.
    const mute = new GainNode(this.context, { gain: 0 });
    source.connect(this.node).connect(mute).connect(this.context.destination);
    await this.context.resume();
  }

  createEncoder() {
    const encoder = new AudioEncoder({
      output: (chunk) => {
        if (chunk.byteLength > this.opusScratch.length) this.opusScratch = new Uint8Array(chunk.byteLength);
        const bytes = this.opusScratch.subarray(0, chunk.byteLength);
        chunk.copyTo(bytes);
        this.onPacket(bytes, (chunk.duration ?? FRAME_MS * 1000) / 1000);
      },
      error: (err) => console.error('earshot: opus encoder failed', err),
    });
    encoder.configure(OPUS);
    return encoder;
  }

  onFrame(samples) {
    // The session's codec decides, never whether an encoder happens to exist: a frame must not
    // go out as PCM16 on an Opus session (the server can only call it a corrupt Opus packet).
    if (this.format.codec === 'opus') {
      if (this.encoder?.state !== 'configured') return;
      const data = new AudioData({
        format: 'f32',
        sampleRate: this.format.sampleRate,
        numberOfFrames: samples.length,
        numberOfChannels: 1,
        timestamp: this.timestampUs,
        data: samples,
      });
      this.timestampUs += FRAME_MS * 1000;
      this.encoder.encode(data);
      data.close();
      return;
    }
    for (let i = 0; i < samples.length; i++) {
      const s = Math.max(-1, Math.min(1, samples[i]));
      this.pcmView.setInt16(2 * i, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
    this.onPacket(this.pcm.subarray(0, samples.length * 2), FRAME_MS);
  }

  async stop() {
    // The worklet keeps posting frames until the context closes; frames already queued on the
    // port would still arrive after the encoder is gone. Detach first, so nothing is sent after stop().
    if (this.node) {
      this.node.port.onmessage = null;
      this.node.port.close();
      this.node.disconnect();
    }
    this.stream?.getTracks().forEach((track) => track.stop());
    if (this.encoder?.state === 'configured') {
      // Packets still inside the encoder are the end of what was said: send them before the caller commits.
      try {
        await this.encoder.flush();
      } finally {
        this.encoder.close();
      }
    }
    await this.context?.close();
    this.stream = this.context = this.encoder = this.node = undefined;
  }
}
