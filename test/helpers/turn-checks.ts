import type { Test } from 'tap';
import type { SpeechFixture } from '../fixtures/speech.js';
import type { TurnRecord } from './native-client.js';

const TOLERANCE_MS = 150;
/** Streaming faster than real time ends an utterance before the previous reply is done, so turns queue instead of barging in. */
export const QUEUED_TURNS = { coalesce: false } as const;
export const NO_BARGE_IN = { bargeIn: false };

/** One turn per sentence, boundaries within 150 ms of the fixture's truth, and the echo engine heard exactly that utterance. */
export function checkTurns(t: Test, turns: TurnRecord[], fixture: SpeechFixture, label: string): void {
  t.equal(turns.length, fixture.truth.length, `${label}: one turn per sentence`);
  fixture.truth.forEach((truth, i) => {
    const turn = turns[i];
    if (!turn) return;
    t.ok(Math.abs(turn.startMs! - truth.startMs) <= TOLERANCE_MS, `${label} #${i}: start ${turn.startMs} vs truth ${truth.startMs}`);
    t.ok(Math.abs(turn.endMs! - truth.endMs) <= TOLERANCE_MS, `${label} #${i}: end ${turn.endMs} vs truth ${truth.endMs}`);
    t.equal(turn.finish, 'stop', `${label} #${i}: reply finished`);
    t.match(turn.text, new RegExp(`turn ${i + 1}: heard ${turn.audioMs} ms of audio`), `${label} #${i}: engine heard this utterance`);
  });
}
