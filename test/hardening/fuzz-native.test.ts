import { fuzzNative } from './fuzz.js';
import { fuzzSuite, RUNS } from './fuzz-suite.js';

fuzzSuite(`fuzz the native door with ${RUNS} inputs per codec`, [
  { fuzz: (server, options) => fuzzNative(server, options, 'pcm16') },
  { fuzz: (server, options) => fuzzNative(server, options, 'opus') },
]);
