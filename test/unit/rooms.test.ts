/**
 * The rooms of server/ import one way. Every relative import of server/**\/*.ts (static,
 * dynamic, re-export, type-only alike: a type import is still a dependency) becomes an edge
 * between rooms: a room is a top-level folder of server/ (with its subfolders), and each file at
 * the top of server/ (config, context, app, main) stands alone. The graph must have no cycle,
 * and nothing in server/ may import from outside server/ and protocol/.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import t from 'tap';

const ROOT = resolve(import.meta.dirname, '../..');
const SERVER = join(ROOT, 'server');
const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** The room of a file under server/: its top-level folder, or the file itself at the top. */
function roomOf(file: string): string {
  const [first, ...rest] = relative(SERVER, file).split('/');
  return rest.length === 0 ? first!.replace(/\.[jt]s$/, '') : `${first}/`;
}

type Graph = Map<string, Map<string, string>>;

/** Room → room it imports → one import that makes the edge ("file → target"), for the failure message. */
function roomGraph(): { graph: Graph; outside: string[] } {
  const graph: Graph = new Map();
  const outside: string[] = [];
  for (const file of sourceFiles(SERVER)) {
    const from = roomOf(file);
    if (!graph.has(from)) graph.set(from, new Map());
    for (const match of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const target = resolve(dirname(file), match[1]!);
      const where = `${relative(ROOT, file)} → ${relative(ROOT, target)}`;
      if (target.startsWith(join(ROOT, 'protocol') + '/')) continue;
      if (!target.startsWith(SERVER + '/')) {
        outside.push(where);
        continue;
      }
      const to = roomOf(target);
      if (to !== from && !graph.get(from)!.has(to)) graph.get(from)!.set(to, where);
    }
  }
  return { graph, outside };
}

/** The first cycle found, as the rooms along it (first room repeated at the end), or undefined. */
function findCycle(graph: Graph): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (room: string): string[] | undefined => {
    if (state.get(room) === 'done') return undefined;
    if (state.get(room) === 'open') return [...path.slice(path.indexOf(room)), room];
    state.set(room, 'open');
    path.push(room);
    for (const next of graph.get(room)?.keys() ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(room, 'done');
    return undefined;
  };
  for (const room of graph.keys()) {
    const cycle = visit(room);
    if (cycle) return cycle;
  }
  return undefined;
}

function describe(cycle: string[], graph: Graph): string {
  const steps = cycle.slice(1).map((to, i) => `  ${cycle[i]} → ${to}   (${graph.get(cycle[i]!)!.get(to)})`);
  return `import loop between server rooms: ${cycle.join(' → ')}\n${steps.join('\n')}`;
}

t.test('the cycle finder names a loop and passes a one-way graph', async (t) => {
  const edge = (...rooms: string[]) => new Map(rooms.map((r) => [r, 'x']));
  const loop: Graph = new Map([['a/', edge('b/')], ['b/', edge('c/')], ['c/', edge('a/')], ['d/', edge('a/')]]);
  t.same(findCycle(loop), ['a/', 'b/', 'c/', 'a/']);
  const oneWay: Graph = new Map([['a/', edge('b/', 'c/')], ['b/', edge('c/')], ['c/', edge()]]);
  t.equal(findCycle(oneWay), undefined);
});

t.test('server rooms import one way', async (t) => {
  const { graph, outside } = roomGraph();
  const edges = [...graph.values()].reduce((n, targets) => n + targets.size, 0);
  t.ok(graph.size >= 10 && edges >= 20, `the import graph was read (${graph.size} rooms, ${edges} edges)`);
  t.ok(graph.has('context') && [...graph.values()].some((targets) => targets.has('context')), 'imports of a top-level file (context.js) reach the same room as the file itself');
  const cycle = findCycle(graph);
  t.equal(cycle, undefined, cycle ? describe(cycle, graph) : 'no import loop');
  t.same(outside, [], 'server/ imports only from server/ and protocol/');
});
