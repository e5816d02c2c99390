/**
 * Executes SQL files the way `psql -v ON_ERROR_STOP=1 -f FILE` does, file after file, each file
 * starting from a session like the new connection psql would open. Consecutive statements are
 * sent together to save round trips, except those PostgreSQL refuses inside a transaction block.
 * Files are read as streams: memory stays bounded by the largest statement, whatever the file size.
 */
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import type pg from 'pg';
import { DbfastError } from '../errors.js';
import { canonicalEncoding, encodingSetBy, SUPPORTED_ENCODINGS } from './encoding.js';
import { Lexer, lexScript, type MetaCommand, type Statement, type Variables } from './lexer.js';
import { parseMetaArgs } from './meta.js';
import { advance, codeUnitOffset, type Location } from './position.js';
import { type BatchFailure, runBatch, runCopyIn } from './protocol.js';
import { SourceReader } from './source.js';

export interface SqlFile {
  absolutePath: string;
  /** Shown in progress and errors, e.g. `1_seed/02_users.sql`. */
  relativePath: string;
}

/**
 * The connection files run on. psql opens a new connection for every file; dbfast reuses one and
 * replaces it only when a file changed what a new session would start with (ALTER DATABASE/ROLE SET).
 */
export interface SqlSession {
  readonly client: pg.Client;
  /** Replaces `client` with a new connection to the same database. */
  reconnect(): Promise<void>;
}

export interface ExecuteOptions {
  /** Files included with \i that lie inside this folder are shown relative to it. */
  repositoryRoot: string;
  /** Flush a batch of statements once it holds this many bytes. */
  batchBytes?: number;
  onFileStart?: (file: SqlFile, index: number, total: number) => void;
  /** `\echo` output. */
  onEcho?: (text: string) => void;
  /** A statement that failed while ON_ERROR_STOP was off: psql reports it and goes on. */
  onWarning?: (warning: DbfastError) => void;
  /** Stops between statements once aborted (a statement already running is the caller's to cancel). */
  signal?: AbortSignal;
}

export interface ExecutionStats {
  files: number;
  statements: number;
  rowsCopied: number;
  /** Statements that failed while ON_ERROR_STOP was off. */
  failedStatements: number;
}

const DEFAULT_BATCH_BYTES = 1 << 20;

/** Runs `files` in order; throws a located DbfastError at the first failure (while ON_ERROR_STOP is on). */
export async function executeFiles(session: SqlSession, files: SqlFile[], options: ExecuteOptions): Promise<ExecutionStats> {
  const stats: ExecutionStats = { files: 0, statements: 0, rowsCopied: 0, failedStatements: 0 };
  let defaultsChanged = false;
  for (const [index, file] of files.entries()) {
    options.onFileStart?.(file, index, files.length);
    // Each file gets the session a fresh `psql -f` would: no SET, role or temp table leaks in.
    if (index > 0) {
      if (defaultsChanged) await session.reconnect();
      else await session.client.query('DISCARD ALL');
    }
    const runner = new ScriptRunner(session.client, options, stats);
    await runner.run(file.absolutePath, file.relativePath, psqlVariables(session.client), [], 'UTF8');
    await runner.finishFile(file.relativePath);
    defaultsChanged = runner.changedSessionDefaults;
    stats.files++;
  }
  return stats;
}

/** The variables psql defines before it reads a script. */
function psqlVariables(client: pg.Client): Variables {
  return new Map([
    ['DBNAME', client.database ?? ''],
    ['USER', client.user ?? ''],
    ['HOST', client.host],
    ['PORT', String(client.port)],
    ['ENCODING', 'UTF8'],
    ['ON_ERROR_STOP', 'on'],
  ]);
}

/**
 * Statements that must not share a batch: what PostgreSQL refuses inside a transaction block,
 * procedures and DO blocks (they may COMMIT, which an implicit transaction forbids), and SET
 * LOCAL (which outside BEGIN must not reach the statements after it).
 */
function runsAlone(words: string[]): boolean {
  const [first, second, third] = words;
  if (words.includes('concurrently')) return true;
  switch (first) {
    case 'vacuum':
    case 'reindex':
    case 'cluster':
    case 'call':
    case 'do':
      return true;
    case 'set':
      return second === 'local' || second === 'transaction';
    case 'create':
    case 'drop':
      return second === 'database' || second === 'tablespace' || second === 'subscription';
    case 'alter':
      return second === 'system' || second === 'subscription' || (second === 'database' && words.includes('tablespace'));
    case 'commit':
    case 'rollback':
      return third === undefined && second === 'prepared';
    case 'discard':
      return second === 'all';
    default:
      return false;
  }
}

function startsTransaction(words: string[]): boolean {
  return words[0] === 'begin' || (words[0] === 'start' && words[1] === 'transaction');
}

/** A new enum value cannot be used in the transaction that added it. */
function endsBatch(words: string[]): boolean {
  return words[0] === 'alter' && words[1] === 'type' && words.includes('add') && words.includes('value');
}

/** ALTER DATABASE/ROLE/USER ... SET|RESET: what a new connection starts with, not the current session. */
function changesSessionDefaults(words: string[]): boolean {
  const [first, second] = words;
  return first === 'alter' && (second === 'database' || second === 'role' || second === 'user') && (words.includes('set') || words.includes('reset'));
}

/**
 * psql's boolean variable values: on/off, true/false, yes/no (any unique prefix), 1/0; null for
 * anything else.
 */
export function psqlBoolean(value: string): boolean | null {
  const lower = value.toLowerCase();
  if (lower === '') return null;
  if ('true'.startsWith(lower) || 'yes'.startsWith(lower) || lower === 'on' || lower === '1') return true;
  if ('false'.startsWith(lower) || 'no'.startsWith(lower) || (lower.length > 1 && 'off'.startsWith(lower)) || lower === '0') return false;
  return null;
}

interface Entry {
  statement: Statement;
  file: string;
  textOffset: number;
}

interface Pending {
  entries: Entry[];
  text: string;
}

class ScriptRunner {
  private batch: Pending = { entries: [], text: '' };
  private inFlight: Promise<void> | null = null;
  private readonly batchBytes: number;
  private stopOnError = true;
  /** The file ran ALTER DATABASE/ROLE ... SET: the next file needs a new connection to see it. */
  changedSessionDefaults = false;

  constructor(
    private readonly client: pg.Client,
    private readonly options: ExecuteOptions,
    private readonly stats: ExecutionStats,
  ) {
    this.batchBytes = options.batchBytes ?? DEFAULT_BATCH_BYTES;
  }

  /**
   * Runs one file (the top-level one or an included one); returns the sha256 of its bytes. A file
   * is read in `inherited` encoding (the session's), unless it starts by setting another.
   */
  async run(absolutePath: string, displayPath: string, variables: Variables, includeStack: string[], inherited: string): Promise<string> {
    const reader = SourceReader.open(absolutePath, displayPath);
    try {
      const encoding = leadingEncoding(reader.peek(), displayPath) ?? inherited;
      reader.setEncoding(encoding);
      const lexer = new Lexer(reader, { file: displayPath, variables });
      for (const segment of lexer.segments()) {
        this.options.signal?.throwIfAborted();
        if (segment.kind === 'meta') {
          await this.drain();
          await this.meta(segment, reader, variables, includeStack);
          continue;
        }
        const words = segment.words;
        const encodingName = encodingSetBy(segment.text, words);
        if (encodingName !== undefined) {
          this.checkEncoding(encodingName, reader.encoding, displayPath, segment.location);
          continue;
        }
        if (changesSessionDefaults(words)) this.changedSessionDefaults = true;
        if (segment.copyFromStdin) {
          await this.drain();
          await this.copy(segment, lexer, displayPath);
        } else if (startsTransaction(words)) {
          // Statements before BEGIN must not become part of the transaction it opens.
          await this.drain();
          this.add(segment, displayPath);
        } else if (runsAlone(words) || !this.stopOnError) {
          // Without ON_ERROR_STOP each statement is its own implicit transaction, as psql sends them.
          await this.drain();
          this.add(segment, displayPath);
          await this.flush();
        } else {
          this.add(segment, displayPath);
          if (this.batch.text.length >= this.batchBytes || endsBatch(words)) await this.flush();
        }
      }
      await this.drain();
      return reader.digest();
    } finally {
      reader.close();
    }
  }

  /** psql would roll back a transaction left open at the end of a file; dbfast says so instead. */
  async finishFile(displayPath: string): Promise<void> {
    const status = this.client.getTransactionStatus();
    if (status === 'T' || status === 'E') {
      await this.client.query('ROLLBACK');
      throw new DbfastError('SQL_FAILED', 'file ends inside a transaction block (BEGIN without COMMIT)', {
        file: displayPath,
        hint: 'add COMMIT at the end of the file; psql would silently roll this work back',
      });
    }
  }

  /**
   * dbfast decodes files itself and talks UTF-8 to the server, so a file's client_encoding is
   * applied by the reader (from the top of the file) and never sent.
   */
  private checkEncoding(name: string, current: string, file: string, location: Location): void {
    const canonical = /^default$/i.test(name) ? 'UTF8' : canonicalEncoding(name);
    if (canonical === current) return;
    const message =
      canonical === null
        ? `client encoding ${name} is not supported`
        : `client_encoding changes to ${canonical} after the file started as ${current}`;
    throw new DbfastError('FILE_ENCODING', message, {
      file,
      ...location,
      hint:
        canonical === null
          ? `dbfast reads ${SUPPORTED_ENCODINGS}; convert the file (iconv -f ${name} -t UTF-8)`
          : 'set client_encoding once, before any other statement of the file, or convert the file to UTF-8',
    });
  }

  private add(statement: Statement, file: string): void {
    const separator = this.batch.text ? ';\n' : '';
    const textOffset = this.batch.text.length + separator.length;
    this.batch.text += separator + statement.text;
    this.batch.entries.push({ statement, file, textOffset });
    this.stats.statements++;
  }

  /**
   * Sends the batch without waiting for it, so the next batch is lexed while the server works.
   * At most one batch is in flight, and the next waits for it here: reading ahead of the server
   * would hold the whole file in memory, and nothing may run after a failed statement.
   */
  private async flush(): Promise<void> {
    if (this.batch.entries.length === 0) return;
    const batch = this.batch;
    this.batch = { entries: [], text: '' };
    const stopOnError = this.stopOnError;
    await this.inFlight;
    this.inFlight = runBatch(this.client, batch.text).then((failure) => {
      if (failure) this.failed(locate(failure, batch), stopOnError);
    });
    this.inFlight.catch(() => {}); // awaited by the next flush or drain; this only silences the early rejection
  }

  private failed(error: DbfastError, stopOnError: boolean): void {
    if (stopOnError) throw error;
    this.stats.failedStatements++;
    this.options.onWarning?.(error);
  }

  private async drain(): Promise<void> {
    await this.flush();
    const inFlight = this.inFlight;
    this.inFlight = null;
    await inFlight;
  }

  private async copy(statement: Statement, lexer: Lexer, file: string): Promise<void> {
    this.stats.statements++;
    const data = lexer.copyData();
    try {
      this.stats.rowsCopied += await runCopyIn(this.client, statement.text, data);
    } catch (error) {
      if (error instanceof DbfastError) throw error;
      while (!data.next().done); // the rest of the block is data, never SQL
      this.failed(sqlError(error as Error, file, copyErrorLocation(error as pg.DatabaseError, statement, lexer.copyDataLine)), this.stopOnError);
    }
  }

  private async meta(command: MetaCommand, reader: SourceReader, variables: Variables, includeStack: string[]): Promise<void> {
    const file = reader.displayPath;
    const fail = (message: string, hint?: string): never => {
      throw new DbfastError('SQL_META_COMMAND', message, { file, ...command.location, hint });
    };
    let args: string[] = [];
    try {
      args = parseMetaArgs(command.args, variables);
    } catch (error) {
      fail((error as Error).message);
    }
    switch (command.name) {
      case 'i':
      case 'include':
      case 'ir':
      case 'include_relative': {
        if (!args[0]) fail(`\\${command.name} needs a file name`);
        const target = resolve(dirname(reader.absolutePath), args[0]!);
        if (includeStack.includes(target) || target === reader.absolutePath) {
          fail(`\\${command.name} ${args[0]} includes itself`);
        }
        try {
          await this.run(target, this.displayPath(target), variables, [...includeStack, reader.absolutePath], reader.encoding);
        } catch (error) {
          if ((error as DbfastError).code !== 'FILE_UNREADABLE' || (error as DbfastError).file !== this.displayPath(target)) throw error;
          throw new DbfastError('FILE_UNREADABLE', `\\${command.name} ${args[0]}: ${(error as DbfastError).message}`, { file, ...command.location });
        }
        return;
      }
      case 'echo':
      case 'qecho':
        this.options.onEcho?.(args.join(' '));
        return;
      case 'set': {
        const [name, ...values] = args;
        if (name === undefined) return;
        const value = values.join('');
        if (name === 'ON_ERROR_STOP') this.stopOnError = onErrorStop(value, fail);
        if (name === 'AUTOCOMMIT' && psqlBoolean(value) === false) {
          fail('\\set AUTOCOMMIT off is not supported', 'use BEGIN and COMMIT in the file');
        }
        variables.set(name, value);
        return;
      }
      case 'unset':
        if (args[0] === 'ON_ERROR_STOP') this.stopOnError = false;
        if (args[0]) variables.delete(args[0]);
        return;
      case 'encoding':
        if (args[0]) this.checkEncoding(args[0], reader.encoding, file, command.location);
        return;
      case 'c':
      case 'connect':
        return fail(
          `\\${command.name} is not supported: dbfast runs every file in the database it is building`,
          'remove the \\connect line; dbfast chooses the database',
        );
      default:
        return fail(
          `unsupported psql meta-command \\${command.name}`,
          'dbfast supports \\i, \\ir, \\include, \\echo, \\set, \\unset and \\encoding',
        );
    }
  }

  private displayPath(absolutePath: string): string {
    const fromRoot = relative(this.options.repositoryRoot, absolutePath);
    return fromRoot.startsWith('..') || isAbsolute(fromRoot) ? absolutePath : fromRoot.split('\\').join('/');
  }
}

/** ON_ERROR_STOP as psql reads it: `\set ON_ERROR_STOP` alone means on; an invalid value is an error. */
function onErrorStop(value: string, fail: (message: string) => never): boolean {
  if (value === '') return true;
  const parsed = psqlBoolean(value);
  if (parsed === null) fail(`unrecognized value "${value}" for "ON_ERROR_STOP": Boolean expected`);
  return parsed!;
}

/**
 * The client encoding a file sets before its first other statement (pg_dump writes
 * `SET client_encoding = 'LATIN1';` near the top), read from its first bytes as LATIN1, which
 * every client encoding agrees with on such ASCII statements.
 */
function leadingEncoding(prefix: Buffer, file: string): string | undefined {
  const lastLine = prefix.lastIndexOf(0x0a);
  const text = prefix.toString('latin1', 0, lastLine === -1 ? prefix.length : lastLine + 1);
  try {
    for (const segment of lexScript(text, { file })) {
      if (segment.kind === 'meta') {
        if (segment.name === 'encoding') return encodingOrFail(segment.args.replace(/^'(.*)'$/, '$1'), file, segment.location);
        continue;
      }
      const name = encodingSetBy(segment.text, segment.words);
      if (name !== undefined) return encodingOrFail(name, file, segment.location);
      if (segment.words[0] !== 'set' && !/^select\s+pg_catalog\.set_config\s*\(/i.test(segment.text)) return undefined;
    }
  } catch (error) {
    if ((error as DbfastError).code === 'FILE_ENCODING') throw error;
  }
  return undefined;
}

function encodingOrFail(name: string, file: string, location: Location): string {
  const canonical = /^default$/i.test(name) ? 'UTF8' : canonicalEncoding(name);
  if (canonical) return canonical;
  throw new DbfastError('FILE_ENCODING', `client encoding ${name} is not supported`, {
    file,
    ...location,
    hint: `dbfast reads ${SUPPORTED_ENCODINGS}; convert the file (iconv -f ${name} -t UTF-8)`,
  });
}

/** Which statement of the batch failed, and where in the file. */
function locate(failure: BatchFailure, batch: Pending): DbfastError {
  const { error } = failure;
  const position = Number((error as pg.DatabaseError).position);
  let index = Math.min(failure.statementIndex, batch.entries.length - 1);
  let location: Location | undefined;
  if (position > 0) {
    const offset = codeUnitOffset(batch.text, position - 1);
    index = batch.entries.findLastIndex((entry) => entry.textOffset <= offset);
    const entry = batch.entries[index]!;
    location = locationIn(entry.statement, sourceOffsetOf(entry.statement, offset - entry.textOffset));
  }
  const { statement, file } = batch.entries[Math.max(index, 0)]!;
  return sqlError(error, file, location ?? doBlockLocation(error, statement) ?? statement.location);
}

/** Maps an offset in a statement's sent text back to its source text, through variable substitutions. */
function sourceOffsetOf(statement: Statement, textOffset: number): number {
  const piece = statement.pieces.findLast((candidate) => candidate.textOffset <= textOffset);
  if (!piece) return 0;
  return piece.substituted ? piece.sourceOffset : piece.sourceOffset + (textOffset - piece.textOffset);
}

function locationIn(statement: Statement, sourceOffset: number): Location {
  return advance(statement.location, statement.source.slice(0, sourceOffset));
}

/**
 * A runtime error in a DO block names the line of its body (`PL/pgSQL function inline_code_block
 * line 3`), after `SQL statement "..."` when a statement in the block failed; the body's line 1 is
 * the one holding the opening dollar quote. Points at that line's first token.
 */
function doBlockLocation(error: Error, statement: Statement): Location | undefined {
  const bodyLine = Number(/PL\/pgSQL function inline_code_block line (\d+)/.exec((error as pg.DatabaseError).where ?? '')?.[1]);
  const quote = /\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$/.exec(statement.text);
  if (statement.words[0] !== 'do' || !bodyLine || !quote) return undefined;
  const { source } = statement;
  let lineStart = sourceOffsetOf(statement, quote.index);
  lineStart = source.lastIndexOf('\n', lineStart - 1) + 1;
  for (let line = 1; line < bodyLine; line++) {
    const next = source.indexOf('\n', lineStart);
    if (next === -1) return undefined;
    lineStart = next + 1;
  }
  const indent = /^[ \t]*/.exec(source.slice(lineStart, lineStart + 200))![0].length;
  return locationIn(statement, lineStart + indent);
}

/** Errors in COPY data name the data line (`COPY actor, line 17`): point at that line of the file. */
function copyErrorLocation(error: pg.DatabaseError, statement: Statement, firstDataLine: number): Location {
  const dataLine = Number(/^COPY [^,]+, line (\d+)/.exec(error.where ?? '')?.[1]);
  if (!dataLine || !firstDataLine) return statement.location;
  return { line: firstDataLine + dataLine - 1, column: 1 };
}

function sqlError(error: Error, file: string, location: Location): DbfastError {
  const database = error as pg.DatabaseError;
  const detail = [database.detail && `DETAIL: ${database.detail}`, database.where && `CONTEXT: ${database.where}`]
    .filter(Boolean)
    .join('\n');
  return new DbfastError('SQL_FAILED', error.message, {
    file,
    ...location,
    detail: detail || undefined,
    hint: database.hint,
    cause: error,
  });
}
