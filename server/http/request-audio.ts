import { EarshotError } from '../../protocol/errors.js';

/** Audio per REST request, counted over all clips together, since each clip alone may be short. */
export function checkRequestAudio(totalMs: number, maxRequestAudioMs: number, param?: string): void {
  if (totalMs > maxRequestAudioMs)
    throw new EarshotError('limit_exceeded', `request carries ${Math.round(totalMs)} ms of audio; the limit is ${maxRequestAudioMs} ms per request`, param ? { param } : {});
}
