/**
 * Splits a SQL script into what `psql -f` would send to the server, following psql's own lexer
 * (src/fe_utils/psqlscan.l): standard and E'' strings, quoted identifiers, dollar quotes, nested
 * block comments, parentheses, SQL-standard function bodies (BEGIN ATOMIC ... END), `:var`
 * interpolation, backslash meta-commands and `COPY ... FROM stdin` data blocks ending in `\.`.
 */
import { DbfastError } from '../errors.js';
import { type LineIndex, lineIndex } from './position.js';
import { quoteIdentifier, quoteLiteral } from './quote.js';
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
  /** Offset of the statement's first token in the file. */
  offset: number;
  pieces: TextPiece[];
  /** Lower-cased bare words at parenthesis depth 0, in order (for classification). */
  words: string[];
  /** For `COPY ... FROM stdin`: the inline data (without the `\.` line) and its offset in the file. */
  copy?: { data: string; offset: number };
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
  /** Set when the meta-command stands inside a statement, which psql keeps collecting around it. */
  inStatement?: true;
  /** For `\copy ... FROM stdin`: the inline data, as for COPY. */
  copy?: { data: string; offset: number };
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
const VARIABLE_CHAR = /[A-Za-z_0-9\u0080-\uffff]/;
const DOLLAR_TAG = /\$([A-Za-z_\u0080-\uffff][A-Za-z_0-9\u0080-\uffff]*)?\$/y;
const LINE_END = /\r\n?|\n/g;
const QUOTE_CONTINUATION = /[ \t\f]*(?:\r\n?|\n)[ \t\f\r\n]*'/y;
/** psql's `:{?name}`: TRUE when the variable is defined, else FALSE. */
const VARIABLE_TEST = /:\{\?([A-Za-z_0-9\u0080-\uffff]+)\}/y;

/**
 * Yields statements and meta-commands in file order. Lazy on purpose: a `\set` handled by the
 * caller before pulling the next segment changes how the following statements are interpolated,
 * exactly as in psql.
 */
export function* lexScript(text: string, options: LexOptions): Generator<Segment> {
  const lexer = new Lexer(text, options);
  yield* lexer.segments();
}

class Lexer {
  private pos = 0;
  private lines: LineIndex | undefined;

  constructor(
    private readonly text: string,
    private readonly options: LexOptions,
  ) {}

  *segments(): Generator<Segment> {
    const { text } = this;
    while (true) {
      this.skipSpaceAndComments();
      if (this.pos >= text.length) return;
      if (text[this.pos] === '\\') {
        yield this.metaCommand();
        continue;
      }
      if (text[this.pos] === ';') {
        this.pos++; // an empty statement, as psql ignores it
        continue;
      }
      const statement = this.statement();
      // A statement may be interrupted by meta-commands (psql runs them as they come).
      for (const meta of statement.metas) yield meta;
      if (statement.result.text.trim() === '') continue;
      if (isCopyFromStdin(statement.result.words)) statement.result.copy = this.copyData(statement.result.offset);
      yield statement.result;
    }
  }

  private statement(): { result: Statement; metas: MetaCommand[] } {
    const { text } = this;
    const start = this.pos;
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
        pieces.push({ textOffset: outLength, sourceOffset: chunkStart, substituted: false });
        parts.push(text.slice(chunkStart, end));
        outLength += end - chunkStart;
      }
    };
    const substitute = (value: string, at: number, resumeAt: number) => {
      flush(at);
      pieces.push({ textOffset: outLength, sourceOffset: at, substituted: true });
      parts.push(value);
      outLength += value.length;
      chunkStart = resumeAt;
    };

    while (this.pos < text.length) {
      const ch = text[this.pos]!;
      const next = text[this.pos + 1];
      if (ch === ';' && parenDepth === 0 && beginDepth === 0) {
        this.pos++;
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
        const meta: MetaCommand = { ...this.metaCommand(), inStatement: true };
        chunkStart = this.pos;
        if (SENDS_QUERY.has(meta.name)) {
          sentBy = meta;
          break;
        }
        metas.push(meta);
      } else if (IDENT_START.test(ch)) {
        const wordStart = this.pos;
        while (this.pos < text.length && IDENT_CONT.test(text[this.pos]!)) this.pos++;
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
    flush(significantEnd);
    const result: Statement = { kind: 'statement', text: parts.join(''), offset: start, pieces, words };
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
    if (end === start + 1) return null;
    const value = variables?.get(text.slice(start + 1, end));
    if (value === undefined) return null; // psql leaves unknown :names alone
    this.pos = end;
    return { value, start };
  }

  private metaCommand(): MetaCommand {
    const { text } = this;
    const offset = this.pos;
    let end = text.indexOf('\n', offset);
    if (end === -1) end = text.length;
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
    const meta: MetaCommand = { kind: 'meta', name, args: line.slice(name.length, argsEnd).trim(), offset };
    if (wholeLine && readsInlineData(meta.args)) meta.copy = this.copyData(offset);
    return meta;
  }

  /** COPY ... FROM stdin data: from the line after the statement to a line holding only `\.`. */
  private copyData(copyOffset: number): { data: string; offset: number } {
    const { text } = this;
    const newline = text.indexOf('\n', this.pos);
    if (newline === -1) this.fail('COPY data never ends: no line with \\. follows', copyOffset);
    const dataStart = newline + 1;
    const terminator = /^\\\.\r?$/gm;
    terminator.lastIndex = dataStart;
    const match = terminator.exec(text);
    if (!match) this.fail('COPY data never ends: no line with \\. follows', copyOffset);
    const lineEnd = text.indexOf('\n', match.index);
    this.pos = lineEnd === -1 ? text.length : lineEnd + 1;
    return { data: text.slice(dataStart, match.index), offset: dataStart };
  }

  private skipSpaceAndComments(): void {
    const { text } = this;
    while (this.pos < text.length) {
      const ch = text[this.pos]!;
      if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\f' || ch === '\v') this.pos++;
      else if (ch === '-' && text[this.pos + 1] === '-') this.skipLineComment();
      else if (ch === '/' && text[this.pos + 1] === '*') this.skipBlockComment();
      else return;
    }
  }

  /** Ends at \n or a lone \r, as psql's lexer does (old Mac line endings). */
  private skipLineComment(): void {
    LINE_END.lastIndex = this.pos;
    const match = LINE_END.exec(this.text);
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
        if (text[i + 1] === quote) i += 2;
        else {
          // 'a'<newline>'b' is one string in SQL; for E'' strings that decides how \' is read.
          QUOTE_CONTINUATION.lastIndex = i + 1;
          const continuation = quote === "'" ? QUOTE_CONTINUATION.exec(text) : null;
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

  private fail(message: string, offset: number): never {
    this.lines ??= lineIndex(this.text);
    const { line, column } = this.lines.locate(offset);
    throw new DbfastError('SQL_SYNTAX', message, { file: this.options.file, line, column });
  }
}

const ROUTINE_WORDS = new Set(['create', 'function', 'procedure', 'or', 'replace']);

/** Meta-commands that send the statement collected so far, as a semicolon does. */
const SENDS_QUERY = new Set(['g', 'gx', 'gset']);

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
