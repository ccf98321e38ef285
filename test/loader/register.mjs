/**
 * The test processes' TypeScript loader (.taprc's node-arg), in place of tsx's: each .ts module
 * compiled by esbuild (as tsx does) and cached on disk; every other import goes to Node as is.
 * Loader hooks run on a second thread in Node 20 and every import makes a round trip to it;
 * tsx's hooks do more work per import (a failed .js lookup before each .ts one, its CommonJS
 * hooks, tsconfig paths), and cost about a second of CPU more per test process. Children and
 * threads the tests start still use tsx, as the server and its users do.
 */
import { register } from 'node:module';

process.setSourceMapsEnabled(true);
register('./hooks.mjs', import.meta.url);

// tap starts each test process with its process-info hooks (coverage bookkeeping, off in
// .taprc) and puts them in NODE_OPTIONS for every Node process the test starts in turn: CLI
// runs, spawned servers, Flite processes. There they cost ~0.5 s of CPU each and serve nothing.
const PROCESS_INFO = /"[^"]*@tapjs\/processinfo[^"]*"|\S*@tapjs\/processinfo\S*/g;
if (process.env.NODE_OPTIONS) process.env.NODE_OPTIONS = process.env.NODE_OPTIONS.replace(PROCESS_INFO, '').trim();
