import t from 'tap';
import { Chunker } from '../../server/voice/chunker.js';

/** Feeds `text` as the engine would, a few characters at a time, and collects every piece. */
function cut(text: string, step = 3, chunker = new Chunker()): string[] {
  const pieces: string[] = [];
  for (let i = 0; i < text.length; i += step) pieces.push(...chunker.push(text.slice(i, i + step)));
  return [...pieces, ...chunker.flush()];
}

t.test('the first piece ends at a clause, later ones at sentence ends', async (t) => {
  t.same(cut('Well, I think so, yes. The sky is blue, and grass is green! Is it? Sure'), ['Well, I think so,', 'yes.', 'The sky is blue, and grass is green!', 'Is it?', 'Sure']);
});

t.test('a short opening clause waits for more words', async (t) => {
  t.same(cut('Yes, it is. No.'), ['Yes, it is.', 'No.']);
});

t.test('a piece is handed over as soon as its end is certain, before the reply ends', async (t) => {
  const chunker = new Chunker();
  t.same(chunker.push('Hello there. How'), ['Hello there.'], 'the space after the period completes the first sentence');
  t.same(chunker.push(' are you'), []);
  t.same(chunker.push('?\n'), ['How are you?']);
  t.same(chunker.flush(), []);
});

t.test('abbreviations, decimals and closing quotes do not cut a sentence in the wrong place', async (t) => {
  t.same(cut('Dr. Smith paid 3.50 dollars, e.g. for tea. "Really?" she asked. Done'), ['Dr. Smith paid 3.50 dollars,', 'e.g. for tea.', '"Really?"', 'she asked.', 'Done']);
});

t.test('line breaks end pieces; pieces with nothing to say are dropped', async (t) => {
  t.same(cut('- first item\n- second item\n\n*** \n😀\nlast'), ['- first item', '- second item', 'last']);
});

t.test('a run-on without punctuation is cut at a space within the limit', async (t) => {
  const words = Array.from({ length: 120 }, (_, i) => `word${i}`).join(' ');
  const pieces = cut(words, 7, new Chunker({ firstClauseMinChars: 12, maxChars: 100 }));
  t.ok(pieces.length > 5, `${pieces.length} pieces`);
  t.ok(pieces.every((p) => p.length <= 100), 'no piece is longer than maxChars');
  t.equal(pieces.join(' '), words, 'nothing is lost or split inside a word');
});
