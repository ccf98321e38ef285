import createFvadModule from '@echogarden/fvad-wasm';
import { SAMPLE_RATE } from '../audio/format.js';

/** libfvad (WebRTC VAD) compiled to WASM; one module instance serves every session. */
export interface FvadModule {
  _fvad_new(): number;
  _fvad_free(handle: number): void;
  _fvad_reset(handle: number): void;
  _fvad_set_mode(handle: number, mode: number): number;
  _fvad_set_sample_rate(handle: number, rate: number): number;
  _fvad_process(handle: number, framePtr: number, length: number): number;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  HEAP16: Int16Array;
}

let loading: Promise<FvadModule> | undefined;

export function loadFvad(): Promise<FvadModule> {
  loading ??= (createFvadModule as unknown as () => Promise<FvadModule>)();
  return loading;
}

/** One WebRTC VAD instance: classifies 20 ms frames of 16 kHz audio as voiced or not. */
export class WebRtcVad {
  private readonly module: FvadModule;
  private readonly handle: number;
  private readonly framePtr: number;
  readonly frameSamples: number;

  constructor(module: FvadModule, aggressiveness: number, frameSamples = 320) {
    this.module = module;
    this.frameSamples = frameSamples;
    this.handle = module._fvad_new();
    if (this.handle === 0) throw new Error('fvad_new failed');
    module._fvad_set_mode(this.handle, aggressiveness);
    module._fvad_set_sample_rate(this.handle, SAMPLE_RATE);
    this.framePtr = module._malloc(frameSamples * 2);
  }

  isSpeech(frame: Float32Array): boolean {
    // HEAP16 is re-read per frame: the view is replaced whenever the WASM memory grows.
    const heap = this.module.HEAP16;
    const offset = this.framePtr >> 1;
    for (let i = 0; i < this.frameSamples; i++) {
      const s = frame[i]!;
      heap[offset + i] = s >= 1 ? 32767 : s <= -1 ? -32768 : (s * 32768) | 0;
    }
    return this.module._fvad_process(this.handle, this.framePtr, this.frameSamples) === 1;
  }

  close(): void {
    this.module._free(this.framePtr);
    this.module._fvad_free(this.handle);
  }
}
