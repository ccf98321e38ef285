/**
 * Cuts a reply's streaming text into pieces a TTS engine speaks one at a time. A piece ends at
 * a sentence end (. ! ? … or a line break, followed by space), so each sounds whole. The first
 * piece may end earlier, at a clause (, ; : —) once it has a few words: the first audio then
 * waits for a clause instead of a whole sentence. A run-on without punctuation is cut at a
 * space once it grows past `maxChars`, so a piece never waits for text without end.
 */
export interface ChunkerOptions {
  /** A first piece cut at a clause holds at least this many characters. */
  firstClauseMinChars: number;
  /** Longer text without a sentence end is cut at the last clause or space before this. */
  maxChars: number;
}

export const CHUNKER_DEFAULTS: ChunkerOptions = { firstClauseMinChars: 12, maxChars: 240 };

/** A sentence end: terminal punctuation, maybe closing quotes or brackets, then space; or a line break. */
const SENTENCE_END = /[.!?…。！？]+["'”’)\]]*(?=\s)|\n/g;
const CLAUSE_END = /[,;:—–]["'”’)\]]*(?=\s)/g;
/** Words after which a period is not a sentence end. */
const ABBREVIATION = /(?:^|\s)(?:mr|mrs|ms|dr|prof|st|vs|etc|e\.g|i\.e|no|fig|approx)\.$/i;
/** A piece worth speaking has a letter or digit; lone punctuation, emoji or markup are skipped. */
const SPEAKABLE = /[\p{L}\p{N}]/u;

export class Chunker {
  private readonly options: ChunkerOptions;
  private buffer = '';
  private first = true;

  constructor(options: ChunkerOptions = CHUNKER_DEFAULTS) {
    this.options = options;
  }

  /** Adds a text delta; returns the pieces it completed, in order. */
  push(text: string): string[] {
    this.buffer += text;
    const pieces: string[] = [];
    for (let cut = this.nextCut(); cut > 0; cut = this.nextCut()) this.take(cut, pieces);
    return pieces;
  }

  /** The text is complete: the rest, if it holds anything to say. */
  flush(): string[] {
    const pieces: string[] = [];
    this.take(this.buffer.length, pieces);
    return pieces;
  }

  private take(cut: number, pieces: string[]): void {
    const piece = this.buffer.slice(0, cut).trim();
    this.buffer = this.buffer.slice(cut);
    if (!SPEAKABLE.test(piece)) return;
    this.first = false;
    pieces.push(piece);
  }

  /** Index just past the next piece in the buffer, or 0 when no piece is complete yet. */
  private nextCut(): number {
    const text = this.buffer;
    for (const match of text.matchAll(SENTENCE_END)) {
      const end = match.index + match[0].length;
      if (match[0] !== '\n' && ABBREVIATION.test(text.slice(0, end))) continue;
      if (end <= this.options.maxChars) return end;
      break;
    }
    if (this.first) {
      for (const match of text.matchAll(CLAUSE_END)) {
        const end = match.index + match[0].length;
        if (end > this.options.maxChars) break;
        if (text.slice(0, end).trim().length >= this.options.firstClauseMinChars) return end;
      }
    }
    if (text.length <= this.options.maxChars) return 0;
    // A run-on: cut at the last clause, else the last space, within the limit.
    const head = text.slice(0, this.options.maxChars);
    const clause = Math.max(...[...head.matchAll(CLAUSE_END)].map((m) => m.index + m[0].length), 0);
    const space = head.lastIndexOf(' ');
    return clause > 0 ? clause : space > 0 ? space : this.options.maxChars;
  }
}
