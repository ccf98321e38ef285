import { fuzzRest } from './fuzz.js';
import { fuzzSuite, RUNS } from './fuzz-suite.js';

// A fifth of the inputs for transcriptions: valid requests decode and segment their audio (~9 ms each).
fuzzSuite(`fuzz the REST door with ${RUNS} chat inputs and ${Math.ceil(RUNS / 5)} transcription inputs`, [
  { fuzz: (server, options) => fuzzRest(server, options, 'chat') },
  { runs: Math.ceil(RUNS / 5), fuzz: (server, options) => fuzzRest(server, options, 'transcriptions') },
]);
