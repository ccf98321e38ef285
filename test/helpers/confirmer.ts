/** A Silero confirmer seen from outside, for tests and bench/vad.ts. */
import type { Confirmer } from '../../server/vad/confirmer.js';

/**
 * `inner`, passing everything through, but telling `pushed` of each chunk and, when `answer` is
 * given, handing it each verdict to give to the segmenter (now or later).
 */
export function tappedConfirmer(inner: Confirmer, pushed: () => void, answer?: (give: () => void) => void): Confirmer {
  return {
    open(verdict, failed) {
      const stream = inner.open(answer ? (p) => answer(() => verdict(p)) : verdict, failed);
      return {
        push(chunk, reset, purpose) {
          pushed();
          stream.push(chunk, reset, purpose);
        },
        close: () => stream.close(),
      };
    },
    close: () => inner.close(),
  };
}
