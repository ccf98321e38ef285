import { fuzzRealtime } from './fuzz.js';
import { fuzzSuite, RUNS } from './fuzz-suite.js';

fuzzSuite(`fuzz the Realtime door with ${RUNS} inputs`, [{ fuzz: fuzzRealtime }]);
