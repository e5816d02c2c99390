/**
 * psql's `\copy` (src/bin/psql/copy.c): the rest of the line is cut into the table (and column
 * list), the direction and the file, and the rest is passed on as COPY options; psql then runs
 * `COPY <table> FROM STDIN <options>` and feeds it the file.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { homedir } from 'node:os';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

export interface SlashCopy {
  /** The COPY statement psql sends. */
  statement: string;
  direction: 'from' | 'to';
  /**
   * `file` as written (quotes removed, `~/` expanded); `script` for stdin and stdout, which psql -f
   * reads from the script itself (the lines after \copy, up to `\.`); `psql` for pstdin and
   * pstdout, psql's own standard input or output.
   */
  source: { kind: 'file'; path: string } | { kind: 'program'; command: string } | { kind: 'script' } | { kind: 'psql' };
}

const WHITESPACE = ' \t\n\r';

/** Parses `\copy` arguments like psql's parse_slash_copy; throws psql's message on a parse error. */
export function parseSlashCopy(args: string): SlashCopy {
  if (args.trim() === '') throw new Error('\\copy: arguments required');
  const tokens = new Tokenizer(args);
  const next = (delimiters: string, quotes: string): string => {
    const token = tokens.next(delimiters, quotes);
    if (token === null) throw new Error('\\copy: parse error at end of line');
    return token;
  };
  const parseError = (token: string): never => {
    throw new Error(`\\copy: parse error at "${token}"`);
  };

  let before = '';
  let token = next('.,()', '"');
  if (token.toLowerCase() === 'binary') {
    before += token;
    token = next('.,()', '"');
  }
  if (token === '(') throw new Error('\\copy (query) TO ... is not supported: dbfast writes no files');
  before += ` ${token}`;
  token = next('.,()', '"');
  if (token === '.') {
    before += token + next('.,()', '"');
    token = next('.,()', '"');
  }
  if (token === '(') {
    while (token !== ')') {
      before += ` ${token}`;
      token = next('()', '"');
    }
    before += ` ${token}`;
    token = next('.,()', '"');
  }
  const direction = token.toLowerCase();
  if (direction !== 'from' && direction !== 'to') return parseError(token);

  token = next(';', "'");
  let source: SlashCopy['source'];
  const keyword = token.toLowerCase();
  if (keyword === 'program') {
    const command = next(';', "'");
    if (!/^'.+'$/s.test(command)) return parseError(command);
    source = { kind: 'program', command: stripQuotes(command) };
  } else if (keyword === 'stdin' || keyword === 'stdout') {
    source = { kind: 'script' };
  } else if (keyword === 'pstdin' || keyword === 'pstdout') {
    source = { kind: 'psql' };
  } else {
    const path = stripQuotes(token);
    source = { kind: 'file', path: path.startsWith('~/') || path === '~' ? homedir() + path.slice(1) : path };
  }
  const after = tokens.rest() ?? '';
  const statement = `COPY ${before} ${direction === 'from' ? 'FROM STDIN' : 'TO STDOUT'} ${after}`;
  return { statement, direction, source };
}

/** Whether these `\copy` arguments read data from the script itself, after the `\copy` line. */
export function readsInlineData(args: string): boolean {
  try {
    const { direction, source } = parseSlashCopy(args);
    return direction === 'from' && source.kind === 'script';
  } catch {
    return false;
  }
}

/**
 * Runs `statement` (COPY ... FROM STDIN) with the bytes of `path`, streamed in chunks as they are
 * read; resolves to the rows copied and the sha256 of the bytes sent.
 */
export async function copyFromFile(client: pg.Client, statement: string, path: string): Promise<{ rows: number; hash: string }> {
  const hash = createHash('sha256');
  const copy = client.query(copyFrom(statement));
  const hashing = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  await pipeline(createReadStream(path), hashing, copy);
  return { rows: copy.rowCount ?? 0, hash: hash.digest('hex') };
}

/** sha256 of a file's bytes, read as a stream: a data file whose COPY failed is still part of the fingerprint. */
export async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** psql's strtokx, for what \copy needs: tokens are words, single delimiter characters or quoted strings. */
class Tokenizer {
  private pos = 0;

  constructor(private readonly text: string) {}

  next(delimiters: string, quotes: string): string | null {
    const { text } = this;
    while (this.pos < text.length && WHITESPACE.includes(text[this.pos]!)) this.pos++;
    if (this.pos >= text.length) return null;
    const start = this.pos;
    const first = text[start]!;
    if (delimiters.includes(first)) {
      this.pos++;
      return first;
    }
    if (quotes.includes(first)) {
      let i = start + 1;
      while (i < text.length) {
        if (text[i] === first && text[i + 1] === first) i += 2;
        else if (text[i++] === first) break;
      }
      this.pos = i;
    } else {
      while (this.pos < text.length && !`${WHITESPACE}${delimiters}${quotes}`.includes(text[this.pos]!)) this.pos++;
    }
    const token = text.slice(start, this.pos);
    // strtokx overwrites one whitespace character after a token with its terminator
    if (WHITESPACE.includes(text[this.pos] ?? '')) this.pos++;
    return token;
  }

  rest(): string | null {
    const rest = this.text.slice(this.pos);
    return rest === '' ? null : rest;
  }
}

/** psql's strip_quotes: drops the quote characters, a doubled one stands for itself. */
function stripQuotes(token: string): string {
  return token.replace(/''?/g, (quote) => (quote.length === 2 ? "'" : ''));
}
