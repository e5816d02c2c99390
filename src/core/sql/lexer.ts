/**
 * Splits a SQL script into what `psql -f` would send to the server, following psql's own lexer
 * (src/fe_utils/psqlscan.l): standard and E'' strings, quoted identifiers, dollar quotes, nested
 * block comments, parentheses, SQL-standard function bodies (BEGIN ATOMIC ... END), `:var`
 * interpolation, backslash meta-commands and `COPY ... FROM stdin` data blocks ending in `\.`.
 *
 * The text arrives in pieces and the lexer keeps only a window of it: a segment that runs past the
 * window's end is lexed again once more text has been appended, so memory is bounded by the
 * largest statement, never by the file.
 */
import { DbfastError } from '../errors.js';
import { advance, type Location, START } from './position.js';
import { quoteIdentifier, quoteLiteral } from './quote.js';
import { InvalidBytes } from './source.js';
import { readsInlineData } from './slash-copy.js';

/** A run of the sent text that came from `sourceOffset` in the file (or replaced a variable there). */
export interface TextPiece {
  textOffset: number;
  sourceOffset: number;
  /** True when the text is a substituted variable value rather than file text. */
  substituted: boolean;
}

export interface Statement {
  kind: 'statement';
  text: string;
  /** Offset of the statement's first token in the file (UTF-16 code units). */
  offset: number;
  /** Line and column of the first token. */
  location: Location;
  /** The file's text from the first token to the end of the statement: `pieces` offsets are relative to it. */
  source: string;
  pieces: TextPiece[];
  /** Lower-cased bare words at parenthesis depth 0, in order (for classification). */
  words: string[];
  /** `COPY ... FROM stdin`: its data follows, to be read with `Lexer.copyData()`. */
  copyFromStdin: boolean;
  /** The `\g` or `\gset` that ended the statement instead of a semicolon. */
  sentBy?: MetaCommand;
}

export interface MetaCommand {
  kind: 'meta';
  /** Command name without the backslash, e.g. `i`, `set`, `echo`. */
  name: string;
  /** Raw argument text up to the end of the line, variables not yet expanded. */
  args: string;
  offset: number;
  location: Location;
  /** Set when the meta-command stands inside a statement, which psql keeps collecting around it. */
  inStatement?: true;
  /** `\copy ... FROM stdin`: its data follows, to be read with `Lexer.copyData()`, as for COPY. */
  copyFromStdin?: true;
}

/** Where the text comes from: the next piece of it, or null at the end. */
export interface TextSource {
  next(): string | null;
}

export type Segment = Statement | MetaCommand;

export type Variables = Map<string, string>;

export interface LexOptions {
  /** Path shown in errors. */
  file: string;
  /** psql variables for `:name` interpolation; read at the moment each statement is lexed. */
  variables?: Variables;
}

const IDENT_START = /[A-Za-z_\u0080-\uffff]/;
const IDENT_CONT = /[A-Za-z_0-9$\u0080-\uffff]/;
/** The characters of a psql variable name (psqlscan.l's variable_char, non-ASCII included), for a RegExp class. */
export const VARIABLE_NAME_CHARS = 'A-Za-z_0-9\\u0080-\\uffff';
const VARIABLE_CHAR = new RegExp(`[${VARIABLE_NAME_CHARS}]`);
/** A dollar quote's delimiter, `$$` or `$tag$`: a tag is an identifier without `$` (PostgreSQL's dolq_start, dolq_cont). */
export const DOLLAR_QUOTE = /\$(?:[A-Za-z_\u0080-\uffff][A-Za-z_0-9\u0080-\uffff]*)?\$/;
const DOLLAR_TAG = new RegExp(DOLLAR_QUOTE.source, 'y');
const LINE_END = /\r\n?|\n/g;
const QUOTE_CONTINUATION = /[ \t\f]*(?:\r\n?|\n)[ \t\f\r\n]*'/y;
/** psql's `:{?name}`: TRUE when the variable is defined, else FALSE. */
const VARIABLE_TEST = new RegExp(`:\\{\\?([${VARIABLE_NAME_CHARS}]+)\\}`, 'y');

/** Thrown inside a segment that reaches the window's end before the file's: lex it again with more text. */
const NEED_MORE = Symbol('need more text');

/** The whole of `text`, for callers that hold a script in memory. */
export function* lexScript(text: string, options: LexOptions): Generator<Segment> {
  const pieces = [text];
  const lexer = new Lexer({ next: () => pieces.pop() ?? null }, options);
  yield* lexer.segments();
}

/**
 * Yields statements and meta-commands in file order. Lazy on purpose: a `\set` handled by the
 * caller before pulling the next segment changes how the following statements are interpolated,
 * exactly as in psql. After a `COPY ... FROM stdin` statement, `copyData()` streams its data;
 * data the caller did not read is skipped.
 */
export class Lexer {
  /** The window: the file's text from `base` on. */
  private text = '';
  private base = 0;
  private pos = 0;
  private eof = false;
  /** A known location in the window, advanced incrementally (never from the start of a line again). */
  private mark = { offset: 0, location: START };
  /** After a COPY block the rest of the COPY line is lexed first: there the window's text jumps in the file. */
  private jump: { offset: number; location: Location } | null = null;
  private pendingCopy = false;
  private copyLocation: Location = START;

  constructor(
    private readonly source: TextSource,
    private readonly options: LexOptions,
  ) {}

  *segments(): Generator<Segment> {
    while (true) {
      if (this.pendingCopy) this.skipCopyData();
      this.skipSpaceAndComments();
      const segments = this.retrying(() => this.nextSegments());
      if (segments === null) return;
      for (const segment of segments) {
        if (segment.copyFromStdin) {
          this.pendingCopy = true;
          this.copyLocation = segment.location;
        }
        yield segment;
      }
    }
  }

  /**
   * The data lines of the COPY statement just yielded, in pieces, up to the line holding only `\.`.
   * Data the caller stops reading early (a failed COPY) is skipped all the same: it is never SQL.
   */
  *copyData(): Generator<string, void, undefined> {
    if (!this.pendingCopy) return;
    this.pendingCopy = false;
    const restAt = this.locate(this.pos);
    let lineEnd = this.text.indexOf('\n', this.pos);
    while (lineEnd === -1 && this.extend(this.pos)) lineEnd = this.text.indexOf('\n', this.pos);
    if (lineEnd === -1) throw this.copyNeverEnds();
    // psql lexes the rest of the COPY line after the data, as if the data block were not there.
    const rest = this.text.slice(this.pos, lineEnd + 1);
    this.copyDataLine = this.locate(lineEnd + 1).line;
    const pieces = this.copyPieces(lineEnd + 1);
    try {
      for (let piece = pieces.next(); !piece.done; piece = pieces.next()) yield piece.value;
    } finally {
      // Also when the caller stopped early: the rest of the block is skipped, the line's rest still runs.
      while (!pieces.next().done);
      if (rest.trim() !== '') {
        const after = this.locate(this.pos);
        this.text = rest + this.text.slice(this.pos);
        this.base += this.pos - rest.length;
        this.pos = 0;
        this.mark = { offset: 0, location: restAt };
        this.jump = { offset: rest.length, location: after };
      }
    }
  }

  /** File line of the first data line of the last COPY block read. */
  copyDataLine = 0;

  private skipCopyData(): void {
    const data = this.copyData();
    while (!data.next().done);
  }

  /** Data from `cursor` (a line start) in pieces of whole lines; leaves `pos` after the `\.` line. */
  private *copyPieces(cursor: number): Generator<string, void, undefined> {
    while (true) {
      const terminator = this.copyTerminator(cursor);
      if (terminator) {
        if (terminator.start > cursor) yield this.text.slice(cursor, terminator.start);
        this.pos = terminator.end;
        return;
      }
      const lastNewline = this.text.lastIndexOf('\n');
      if (lastNewline >= cursor) {
        yield this.text.slice(cursor, lastNewline + 1);
        cursor = lastNewline + 1;
      }
      if (this.eof) throw this.copyNeverEnds();
      this.extend(cursor);
      cursor = 0;
    }
  }

  /**
   * The line holding exactly `\.` (ended by \n, \r\n or the end of the file) at or after `from`, a
   * line start, as psql reads it; null when there is none yet, or the window ends inside it.
   */
  private copyTerminator(from: number): { start: number; end: number } | null {
    const { text } = this;
    const next = (at: number) => {
      const newline = text.indexOf('\n\\.', at);
      return newline === -1 ? -1 : newline + 1;
    };
    for (let start = text.startsWith('\\.', from) ? from : next(from); start !== -1; start = next(start + 2)) {
      const after = start + 2;
      const lineEnd = text[after] === '\r' ? after + 1 : after;
      if (lineEnd >= text.length) return this.eof ? { start, end: text.length } : null;
      if (text[lineEnd] === '\n') return { start, end: lineEnd + 1 };
    }
    return null;
  }

  private copyNeverEnds(): DbfastError {
    return new DbfastError('SQL_SYNTAX', 'COPY data never ends: no line with \\. follows', { file: this.options.file, ...this.copyLocation });
  }

  /** Runs `lex` from the current position, again with a longer window while it needs more text. */
  private retrying<T>(lex: () => T): T {
    while (true) {
      const start = this.pos;
      const { mark, jump } = this;
      try {
        return lex();
      } catch (error) {
        if (error !== NEED_MORE) throw error;
        // Meta-commands inside the statement may have moved the mark past its start.
        this.mark = mark;
        this.jump = jump;
        this.pos = start;
        if (!this.extend(start)) this.eof = true;
      }
    }
  }

  /**
   * Drops the window before `keepFrom` and appends at least as much text as the window still holds
   * (so a long statement is lexed a logarithmic number of times). False at the end of the file.
   */
  private extend(keepFrom: number): boolean {
    if (this.eof) return false;
    this.locate(keepFrom);
    const kept = this.text.length - keepFrom;
    const parts = [this.text.slice(keepFrom)];
    let added = 0;
    while (added === 0 || added < kept) {
      const piece = this.nextPiece(parts);
      if (piece === null) {
        this.eof = true;
        break;
      }
      parts.push(piece);
      added += piece.length;
    }
    this.text = parts.join('');
    this.base += keepFrom;
    this.pos -= keepFrom;
    this.mark = { offset: this.mark.offset - keepFrom, location: this.mark.location };
    if (this.jump) this.jump = { offset: this.jump.offset - keepFrom, location: this.jump.location };
    return added > 0 || !this.eof;
  }

  /** The source's next piece; `parts` are the window's text from `keepFrom` and the pieces read since. */
  private nextPiece(parts: string[]): string | null {
    try {
      return this.source.next();
    } catch (error) {
      if (!(error instanceof InvalidBytes)) throw error;
      // The piece would have started after the window and the pieces already read for it.
      throw error.at(advance(this.locate(this.text.length), parts.slice(1).join('')));
    }
  }

  /** Line and column of a window offset at or after the last one located. */
  private locate(offset: number): Location {
    if (this.jump && offset >= this.jump.offset) {
      this.mark = { offset: this.jump.offset, location: this.jump.location };
      this.jump = null;
    }
    if (offset > this.mark.offset) {
      this.mark = { offset, location: advance(this.mark.location, this.text.slice(this.mark.offset, offset)) };
    }
    return this.mark.location;
  }

  /** The next statement with the meta-commands that interrupted it, or one meta-command; null at the end. */
  private nextSegments(): Segment[] | null {
    if (this.pos >= this.text.length) {
      if (!this.eof) throw NEED_MORE;
      return null;
    }
    if (this.text[this.pos] === '\\') return [this.metaCommand()];
    if (this.text[this.pos] === ';') {
      this.pos++; // an empty statement, as psql ignores it
      return [];
    }
    const { result, metas } = this.statement();
    // A statement may be interrupted by meta-commands (psql runs them as they come).
    if (result.text.trim() === '') return metas;
    result.copyFromStdin = isCopyFromStdin(result.words);
    return [...metas, result];
  }

  private statement(): { result: Statement; metas: MetaCommand[] } {
    const { text } = this;
    const start = this.pos;
    const location = this.locate(start);
    const parts: string[] = [];
    const pieces: TextPiece[] = [];
    const words: string[] = [];
    const metas: MetaCommand[] = [];
    let sentBy: MetaCommand | undefined;
    let outLength = 0;
    let chunkStart = start;
    // The text ends at the last token: a trailing `-- comment` would swallow a batch separator.
    let significantEnd = start;
    let parenDepth = 0;
    let beginDepth = 0;
    // psql's heuristic for CREATE [OR REPLACE] FUNCTION|PROCEDURE ... BEGIN ATOMIC ... END
    const leading: string[] = [];
    let identifierCount = 0;
    const trackWord = (word: string) => {
      if (parenDepth === 0 && words.length < 64) words.push(word);
      if (identifierCount === leading.length && leading.length < 4 && ROUTINE_WORDS.has(word)) leading.push(word[0]!);
      identifierCount++;
      if (parenDepth === 0 && isRoutineDefinition(leading)) {
        if (word === 'begin') beginDepth++;
        else if (word === 'case' && beginDepth >= 1) beginDepth++; // CASE also ends with END
        else if (word === 'end' && beginDepth > 0) beginDepth--;
      }
    };

    const flush = (end: number) => {
      if (end > chunkStart) {
        pieces.push({ textOffset: outLength, sourceOffset: chunkStart - start, substituted: false });
        parts.push(text.slice(chunkStart, end));
        outLength += end - chunkStart;
      }
    };
    const substitute = (value: string, at: number, resumeAt: number) => {
      flush(at);
      pieces.push({ textOffset: outLength, sourceOffset: at - start, substituted: true });
      parts.push(value);
      outLength += value.length;
      chunkStart = resumeAt;
    };

    let ended = false;
    while (this.pos < text.length) {
      // Two characters of lookahead decide most tokens; near the window's end, get more first.
      if (this.pos + 2 >= text.length && !this.eof) throw NEED_MORE;
      const ch = text[this.pos]!;
      const next = text[this.pos + 1];
      if (ch === ';' && parenDepth === 0 && beginDepth === 0) {
        this.pos++;
        ended = true;
        break;
      }
      const significant = !(ch === '-' && next === '-') && !(ch === '/' && next === '*') && !/\s/.test(ch) && ch !== '\\';
      if (ch === "'") {
        this.skipQuoted("'", this.pos, false);
      } else if (ch === '"') {
        this.skipQuoted('"', this.pos, false);
      } else if (ch === '-' && next === '-') {
        this.skipLineComment();
      } else if (ch === '/' && next === '*') {
        this.skipBlockComment();
      } else if (ch === '$' && this.dollarQuoteAt(this.pos) !== null) {
        this.skipDollarQuoted();
      } else if (ch === '(') {
        parenDepth++;
        this.pos++;
      } else if (ch === ')') {
        if (parenDepth > 0) parenDepth--;
        this.pos++;
      } else if (ch === ':' && next === ':') {
        this.pos += 2;
      } else if (ch === ':') {
        const reference = this.variableReference();
        if (reference) substitute(reference.value, reference.start, this.pos);
        else this.pos++;
      } else if (ch === '\\') {
        flush(this.pos);
        const meta = this.metaCommand(true);
        chunkStart = this.pos;
        if (SENDS_QUERY.has(meta.name)) {
          sentBy = meta;
          ended = true;
          break;
        }
        metas.push(meta);
      } else if (IDENT_START.test(ch)) {
        const wordStart = this.pos;
        while (this.pos < text.length && IDENT_CONT.test(text[this.pos]!)) this.pos++;
        if (this.pos + 1 >= text.length && !this.eof) throw NEED_MORE;
        const word = text.slice(wordStart, this.pos).toLowerCase();
        const quote = text[this.pos];
        if (quote === "'" && (word === 'e' || word === 'b' || word === 'x' || word === 'n')) {
          this.skipQuoted("'", wordStart, word === 'e');
        } else if (word === 'u' && quote === '&' && (text[this.pos + 1] === "'" || text[this.pos + 1] === '"')) {
          this.pos++;
          this.skipQuoted(text[this.pos]!, wordStart, false);
        } else {
          trackWord(word);
        }
      } else if (/[0-9]/.test(ch)) {
        while (this.pos < text.length && /[0-9A-Za-z_.]/.test(text[this.pos]!)) this.pos++;
      } else {
        this.pos++;
      }
      if (significant) significantEnd = Math.max(significantEnd, this.pos, chunkStart);
    }
    if (!ended && !this.eof) throw NEED_MORE;
    flush(significantEnd);
    const result: Statement = {
      kind: 'statement',
      text: parts.join(''),
      offset: this.base + start,
      location,
      source: text.slice(start, this.pos),
      pieces,
      words,
      copyFromStdin: false,
    };
    if (sentBy) result.sentBy = sentBy;
    return { result, metas };
  }

  private variableReference(): { value: string; start: number } | null {
    const { text } = this;
    const start = this.pos;
    const variables = this.options.variables;
    const quote = text[start + 1];
    VARIABLE_TEST.lastIndex = start;
    const test = VARIABLE_TEST.exec(text);
    if (test) {
      this.pos = start + test[0].length;
      return { value: variables?.get(test[1]!) === undefined ? 'FALSE' : 'TRUE', start };
    }
    if (quote === "'" || quote === '"') {
      let end = start + 2;
      while (end < text.length && VARIABLE_CHAR.test(text[end]!)) end++;
      if (end === start + 2 || text[end] !== quote) return null;
      const value = variables?.get(text.slice(start + 2, end));
      if (value === undefined) return null;
      this.pos = end + 1;
      return { value: quote === "'" ? quoteLiteral(value) : quoteIdentifier(value), start };
    }
    let end = start + 1;
    while (end < text.length && VARIABLE_CHAR.test(text[end]!)) end++;
    // A name running to the window's end needs no check here: the statement then reaches the
    // window's end too and is lexed again with more text.
    if (end === start + 1) return null;
    const value = variables?.get(text.slice(start + 1, end));
    if (value === undefined) return null; // psql leaves unknown :names alone
    this.pos = end;
    return { value, start };
  }

  private metaCommand(inStatement = false): MetaCommand {
    const { text } = this;
    const offset = this.pos;
    let end = text.indexOf('\n', offset);
    if (end === -1) {
      if (!this.eof) throw NEED_MORE;
      end = text.length;
    }
    const line = text.slice(offset + 1, end).replace(/\r$/, '');
    // psql's command name runs to the next space or backslash (\dt+, \l+)
    const match = /^([^\s\\]+|\S)/.exec(line);
    const name = match ? match[1]! : '';
    // \copy takes the whole line, backslashes included, as psql reads it
    const wholeLine = name.toLowerCase() === 'copy';
    const argsEnd = wholeLine ? line.length : unquotedBackslash(line, name.length);
    // As in psql: `\\` ends the meta-command and the rest of the line is SQL again; any other
    // unquoted backslash starts the next meta-command on the same line.
    const separator = line.startsWith('\\\\', argsEnd);
    this.pos = argsEnd === line.length ? end : offset + 1 + argsEnd + (separator ? 2 : 0);
    const args = line.slice(name.length, argsEnd).trim();
    const meta: MetaCommand = { kind: 'meta', name, args, offset: this.base + offset, location: this.locate(offset) };
    if (inStatement) meta.inStatement = true;
    if (wholeLine && !inStatement && readsInlineData(args)) meta.copyFromStdin = true;
    return meta;
  }

  /**
   * Skips blank space and comments before a segment, extending the window itself and keeping none
   * of what it skipped: a long run of comment lines costs no memory.
   */
  private skipSpaceAndComments(): void {
    while (this.pos < this.text.length || this.extend(this.pos)) {
      const { text } = this;
      const ch = text[this.pos]!;
      if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\f' || ch === '\v') {
        this.pos++;
        continue;
      }
      if (ch !== '-' && ch !== '/') return;
      if (this.pos + 1 >= text.length && !this.eof) {
        this.extend(this.pos);
        continue;
      }
      const next = text[this.pos + 1];
      const comment = ch === '-' && next === '-' ? 'line' : ch === '/' && next === '*' ? 'block' : null;
      if (comment === null) return;
      const start = this.pos;
      try {
        if (comment === 'line') this.skipLineComment();
        else this.skipBlockComment();
      } catch (error) {
        if (error !== NEED_MORE) throw error;
        this.pos = start;
        this.extend(start);
      }
    }
  }

  /** Ends at \n or a lone \r, as psql's lexer does (old Mac line endings). */
  private skipLineComment(): void {
    LINE_END.lastIndex = this.pos;
    const match = LINE_END.exec(this.text);
    if (!match && !this.eof) throw NEED_MORE;
    this.pos = match ? match.index + match[0].length : this.text.length;
  }

  private skipBlockComment(): void {
    const { text } = this;
    const start = this.pos;
    let depth = 0;
    while (this.pos < text.length) {
      if (text[this.pos] === '/' && text[this.pos + 1] === '*') {
        depth++;
        this.pos += 2;
      } else if (text[this.pos] === '*' && text[this.pos + 1] === '/') {
        depth--;
        this.pos += 2;
        if (depth === 0) return;
      } else {
        this.pos++;
      }
    }
    this.fail('unterminated /* comment', start);
  }

  /** From the opening quote at this.pos; `start` is where the literal began (E, U& prefixes). */
  private skipQuoted(quote: string, start: number, backslashEscapes: boolean): void {
    const { text } = this;
    let i = this.pos + 1;
    while (i < text.length) {
      const ch = text[i];
      if (backslashEscapes && ch === '\\') {
        i += 2;
      } else if (ch === quote) {
        if (i + 1 >= text.length && !this.eof) throw NEED_MORE;
        if (text[i + 1] === quote) i += 2;
        else {
          // 'a'<newline>'b' is one string in SQL; for E'' strings that decides how \' is read.
          QUOTE_CONTINUATION.lastIndex = i + 1;
          const continuation = quote === "'" ? QUOTE_CONTINUATION.exec(text) : null;
          // Only space up to the window's end: the statement reaches it too and is lexed again.
          if (!continuation) {
            this.pos = i + 1;
            return;
          }
          i = continuation.index + continuation[0].length;
        }
      } else {
        i++;
      }
    }
    this.fail(quote === '"' ? 'unterminated quoted identifier' : 'unterminated quoted string', start);
  }

  private dollarQuoteAt(at: number): string | null {
    DOLLAR_TAG.lastIndex = at;
    const match = DOLLAR_TAG.exec(this.text);
    return match ? match[0] : null;
  }

  private skipDollarQuoted(): void {
    const start = this.pos;
    const tag = this.dollarQuoteAt(start)!;
    const close = this.text.indexOf(tag, start + tag.length);
    if (close === -1) this.fail(`unterminated dollar-quoted string ${tag}`, start);
    this.pos = close + tag.length;
  }

  /** An unterminated construct is an error only at the end of the file; before, it needs more text. */
  private fail(message: string, offset: number): never {
    if (!this.eof) throw NEED_MORE;
    const { line, column } = this.locate(offset);
    throw new DbfastError('SQL_SYNTAX', message, { file: this.options.file, line, column });
  }
}

const ROUTINE_WORDS = new Set(['create', 'function', 'procedure', 'or', 'replace']);

/** Meta-commands that send the statement collected so far, as a semicolon does. */
const SENDS_QUERY = new Set(['g', 'gx', 'gset', 'gexec']);

/** Index of the first backslash outside quotes at or after `from`, or the line's length. */
function unquotedBackslash(line: string, from: number): number {
  let quote: string | null = null;
  for (let i = from; i < line.length; i++) {
    const ch = line[i]!;
    if (quote) {
      if (quote === "'" && ch === '\\') i++;
      else if (ch === quote) quote = null;
    } else if (ch === "'" || ch === '"' || ch === '`') {
      quote = ch;
    } else if (ch === '\\') {
      return i;
    }
  }
  return line.length;
}

function isRoutineDefinition(leading: string[]): boolean {
  const [a, b, c, d] = leading;
  return a === 'c' && (b === 'f' || b === 'p' || (b === 'o' && c === 'r' && (d === 'f' || d === 'p')));
}

function isCopyFromStdin(words: string[]): boolean {
  if (words[0] !== 'copy') return false;
  const from = words.indexOf('from');
  return from > 0 && words[from + 1] === 'stdin';
}
