/**
 * Preloaded into the bench's server process (`--import`): sums the time the garbage collector
 * paused the main thread (perf_hooks 'gc' entries) and answers `{cmd: 'gc'}` over IPC with the
 * totals since the last ask. A preload, so the same probe measures a server built from another
 * commit (bench/frame-cost.ts --root) exactly as it measures this one.
 */
import { constants, PerformanceObserver, type NodeGCPerformanceDetail } from 'node:perf_hooks';

export interface GcTotals {
  type: 'gc';
  /** Main-thread pause time, ms. */
  ms: number;
  count: number;
  /** Of which full mark-compacts. */
  major: number;
}

let totals: GcTotals = { type: 'gc', ms: 0, count: 0, major: 0 };

new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    totals.ms += entry.duration;
    totals.count++;
    if (((entry as { detail?: NodeGCPerformanceDetail }).detail)?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) totals.major++;
  }
}).observe({ entryTypes: ['gc'] });

process.on('message', (m: { cmd?: string }) => {
  if (m.cmd !== 'gc') return;
  process.send!(totals);
  totals = { type: 'gc', ms: 0, count: 0, major: 0 };
});
