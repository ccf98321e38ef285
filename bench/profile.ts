/**
 * Summarises a V8 .cpuprofile (from `npm run bench -- --profile`): self time by function
 * and by file, heaviest first.  Usage: node --import tsx bench/profile.ts [file] [top]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const dir = fileURLToPath(new URL('./results/', import.meta.url));
const newest = () =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => dir + f)
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
const file = process.argv[2] || newest();
if (!file) throw new Error('no .cpuprofile in bench/results/; run npm run bench -- --profile');
const top = Number(process.argv[3] ?? 30);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
for (let i = 0; i < profile.samples.length; i++) selfUs.set(profile.samples[i]!, (selfUs.get(profile.samples[i]!) ?? 0) + (profile.timeDeltas[i] ?? 0));
let total = 0;
const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
for (const [id, us] of selfUs) {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  if (functionName === '(idle)') continue;
  total += us;
  const short = url.replace(/^file:\/\/.*?\/(node_modules|server|protocol|bench)\//, '$1/');
  byFunction.set(`${functionName || '(anonymous)'} ${short}:${lineNumber + 1}`, (byFunction.get(`${functionName || '(anonymous)'} ${short}:${lineNumber + 1}`) ?? 0) + us);
  byFile.set(short || '(native)', (byFile.get(short || '(native)') ?? 0) + us);
}
const print = (title: string, map: Map<string, number>) => {
  console.log(`\n${title}`);
  for (const [name, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((us / total) * 100).toFixed(1).padStart(5)}%  ${name}`);
};
console.log(`${file}: ${(total / 1e6).toFixed(1)} s busy (idle left out)`);
print('self time by function', byFunction);
print('self time by file', byFile);
