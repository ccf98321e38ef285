/**
 * Preloaded into the bench's server process (`--import`), so it measures a server built from
 * another commit (bench/frame-cost.ts --root) exactly as it measures this one. Over IPC:
 * - `{cmd: 'gc'}`: the time the garbage collector paused the main thread (perf_hooks 'gc'
 *   entries) since the last ask;
 * - `{cmd: 'heap-start'}` / `{cmd: 'heap-stop'}`: V8's sampling heap profiler over a window,
 *   objects already collected included, so short-lived per-frame garbage counts: the bytes the
 *   main thread allocated, estimated, and the call sites that allocated most.
 */
import { Session } from 'node:inspector/promises';
import { constants, PerformanceObserver, type NodeGCPerformanceDetail } from 'node:perf_hooks';

export interface GcTotals {
  type: 'gc';
  /** Main-thread pause time, ms. */
  ms: number;
  count: number;
  /** Of which full mark-compacts. */
  major: number;
}

export interface HeapSample {
  type: 'heap';
  /** Estimated bytes allocated on the main thread over the window. */
  bytes: number;
  /** The allocating function and its two callers, with bytes, largest first. */
  sites: [string, number][];
}

/** A sample every this many bytes on average: ~100 B per frame is then seen every few frames. */
const SAMPLING_INTERVAL = 512;

let totals: GcTotals = { type: 'gc', ms: 0, count: 0, major: 0 };

new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    totals.ms += entry.duration;
    totals.count++;
    if ((entry as { detail?: NodeGCPerformanceDetail }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) totals.major++;
  }
}).observe({ entryTypes: ['gc'] });

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

function sitesOf(head: ProfileNode): { bytes: number; sites: [string, number][] } {
  const sites = new Map<string, number>();
  let bytes = 0;
  const walk = (node: ProfileNode, stack: string[]) => {
    const { functionName, url, lineNumber, columnNumber } = node.callFrame;
    const here = [...stack, `${functionName || '(anonymous)'} ${url.replace(/^.*\/(server|protocol|node_modules)\//, '$1/')}:${lineNumber + 1}:${columnNumber + 1}`];
    if (node.selfSize > 0) {
      bytes += node.selfSize;
      const key = here.slice(-3).reverse().join(' < ');
      sites.set(key, (sites.get(key) ?? 0) + node.selfSize);
    }
    for (const child of node.children) walk(child, here);
  };
  walk(head, []);
  return { bytes, sites: [...sites].sort((a, b) => b[1] - a[1]).slice(0, 12) };
}

const inspector = new Session();

process.on('message', async (m: { cmd?: string }) => {
  if (m.cmd === 'gc') {
    process.send!(totals);
    totals = { type: 'gc', ms: 0, count: 0, major: 0 };
  } else if (m.cmd === 'heap-start') {
    inspector.connect();
    await inspector.post('HeapProfiler.enable');
    await inspector.post('HeapProfiler.startSampling', { samplingInterval: SAMPLING_INTERVAL, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never);
    process.send!({ type: 'ok' });
  } else if (m.cmd === 'heap-stop') {
    const { profile } = await inspector.post('HeapProfiler.getSamplingProfile');
    await inspector.post('HeapProfiler.stopSampling');
    inspector.disconnect();
    const sample: HeapSample = { type: 'heap', ...sitesOf(profile.head as ProfileNode) };
    process.send!(sample);
  }
});
