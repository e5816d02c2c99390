/**
 * Executes SQL files the way `psql -v ON_ERROR_STOP=1 -f FILE` does, over one client connection,
 * each file starting from a clean session. Consecutive statements are sent together to save
 * round trips, except those PostgreSQL refuses inside a transaction block.
 */
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import type pg from 'pg';
import { DbfastError } from '../errors.js';
import { lexScript, type MetaCommand, type Statement, type Variables } from './lexer.js';
import { parseMetaArgs } from './meta.js';
import { codeUnitOffset } from './position.js';
import { type BatchFailure, runBatch, runCopyIn } from './protocol.js';
import { readSource, type Source } from './source.js';

export interface SqlFile {
  absolutePath: string;
  /** Shown in progress and errors, e.g. `1_seed/02_users.sql`. */
  relativePath: string;
  /** sha256 hex the caller hashed; when the bytes read differ (edited since), the file is listed in `includedFiles`. */
  hash?: string;
}

export interface ExecuteOptions {
  /** Files included with \i that lie inside this folder are shown relative to it. */
  repositoryRoot: string;
  /** Flush a batch of statements once it holds this many bytes. */
  batchBytes?: number;
  onFileStart?: (file: SqlFile, index: number, total: number) => void;
  /** `\echo` output. */
  onEcho?: (text: string) => void;
  /** Stops between statements once aborted (a statement already running is the caller's to cancel). */
  signal?: AbortSignal;
}

export interface ExecutionStats {
  files: number;
  statements: number;
  rowsCopied: number;
  /**
   * Every file read besides `files` (\i and nested includes), once per path and content, with the
   * sha256 hex of the bytes read; also a file of `files` whose bytes differ from its `hash`.
   */
  includedFiles: FileRead[];
}

export interface FileRead {
  absolutePath: string;
  hash: string;
}

const DEFAULT_BATCH_BYTES = 1 << 20;

/** Runs `files` in order on `client`; throws a located DbfastError at the first failure. */
export async function executeFiles(client: pg.Client, files: SqlFile[], options: ExecuteOptions): Promise<ExecutionStats> {
  const stats: ExecutionStats = { files: 0, statements: 0, rowsCopied: 0, includedFiles: [] };
  for (const [index, file] of files.entries()) {
    options.onFileStart?.(file, index, files.length);
    // Each file gets the session a fresh `psql -f` would: no SET, role or temp table leaks in.
    if (index > 0) await client.query('DISCARD ALL');
    const runner = new ScriptRunner(client, options, stats);
    const source = await readSource(file.absolutePath, file.relativePath);
    if (file.hash !== undefined && source.hash !== file.hash) recordRead(stats, source);
    await runner.run(source, psqlVariables(client), []);
    await runner.finishFile(source);
    stats.files++;
  }
  return stats;
}

/**
 * For every file read besides the top-level ones (includes, data files). A file read twice with
 * different bytes is listed twice: the database holds both, so no one content is fresh.
 */
function recordRead(stats: ExecutionStats, { absolutePath, hash }: FileRead): void {
  const known = stats.includedFiles.some((read) => read.absolutePath === absolutePath && read.hash === hash);
  if (!known) stats.includedFiles.push({ absolutePath, hash });
}

/** The variables psql defines before it reads a script. */
function psqlVariables(client: pg.Client): Variables {
  return new Map([
    ['DBNAME', client.database ?? ''],
    ['USER', client.user ?? ''],
    ['HOST', client.host],
    ['PORT', String(client.port)],
    ['ENCODING', 'UTF8'],
    ['ON_ERROR_STOP', '1'],
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

interface Pending {
  statements: { statement: Statement; source: Source; textOffset: number }[];
  text: string;
}

class ScriptRunner {
  private batch: Pending = { statements: [], text: '' };
  private inFlight: Promise<void> | null = null;
  private readonly batchBytes: number;

  constructor(
    private readonly client: pg.Client,
    private readonly options: ExecuteOptions,
    private readonly stats: ExecutionStats,
  ) {
    this.batchBytes = options.batchBytes ?? DEFAULT_BATCH_BYTES;
  }

  async run(source: Source, variables: Variables, includeStack: string[]): Promise<void> {
    for (const segment of lexScript(source.text, { file: source.displayPath, variables })) {
      this.options.signal?.throwIfAborted();
      if (segment.kind === 'meta') {
        await this.drain();
        await this.meta(segment, source, variables, includeStack);
      } else if (segment.copy) {
        await this.drain();
        await this.copy(segment, source);
      } else if (startsTransaction(segment.words)) {
        // Statements before BEGIN must not become part of the transaction it opens.
        await this.drain();
        this.add(segment, source);
      } else if (runsAlone(segment.words)) {
        await this.drain();
        this.add(segment, source);
        await this.drain();
      } else {
        this.add(segment, source);
        if (this.batch.text.length >= this.batchBytes || endsBatch(segment.words)) this.flush();
      }
    }
    await this.drain();
  }

  /** psql would roll back a transaction left open at the end of a file; dbfast says so instead. */
  async finishFile(source: Source): Promise<void> {
    const status = this.client.getTransactionStatus();
    if (status === 'T' || status === 'E') {
      await this.client.query('ROLLBACK');
      throw new DbfastError('SQL_FAILED', 'file ends inside a transaction block (BEGIN without COMMIT)', {
        file: source.displayPath,
        hint: 'add COMMIT at the end of the file; psql would silently roll this work back',
      });
    }
  }

  private add(statement: Statement, source: Source): void {
    const separator = this.batch.text ? ';\n' : '';
    const textOffset = this.batch.text.length + separator.length;
    this.batch.text += separator + statement.text;
    this.batch.statements.push({ statement, source, textOffset });
    this.stats.statements++;
  }

  /**
   * Sends the batch without waiting for it, so the next batch is lexed while the server works.
   * At most one batch is in flight: nothing runs after a failed statement.
   */
  private flush(): void {
    if (this.batch.statements.length === 0) return;
    const batch = this.batch;
    this.batch = { statements: [], text: '' };
    const previous = this.inFlight;
    this.inFlight = (async () => {
      await previous;
      const failure = await runBatch(this.client, batch.text);
      if (failure) throw this.locate(failure, batch);
    })();
    this.inFlight.catch(() => {}); // awaited by drain(); this only silences the early rejection
  }

  private async drain(): Promise<void> {
    this.flush();
    const inFlight = this.inFlight;
    this.inFlight = null;
    await inFlight;
  }

  private locate(failure: BatchFailure, batch: Pending): DbfastError {
    const { error } = failure;
    const position = Number((error as pg.DatabaseError).position);
    let index = Math.min(failure.statementIndex, batch.statements.length - 1);
    let sourceOffset: number | undefined;
    if (position > 0) {
      const offset = codeUnitOffset(batch.text, position - 1);
      index = batch.statements.findLastIndex((entry) => entry.textOffset <= offset);
      const entry = batch.statements[index]!;
      sourceOffset = sourceOffsetOf(entry.statement, offset - entry.textOffset);
    }
    const { statement, source } = batch.statements[Math.max(index, 0)]!;
    return sqlError(error, source, sourceOffset ?? doBlockLineOffset(error, statement, source) ?? statement.offset);
  }

  private async copy(statement: Statement, source: Source): Promise<void> {
    this.stats.statements++;
    try {
      this.stats.rowsCopied += await runCopyIn(this.client, statement.text, statement.copy!.data);
    } catch (error) {
      throw sqlError(error as Error, source, copyErrorOffset(error as pg.DatabaseError, statement, source));
    }
  }

  private async meta(command: MetaCommand, source: Source, variables: Variables, includeStack: string[]): Promise<void> {
    const fail = (message: string, hint?: string): never => {
      const { line, column } = source.lines.locate(command.offset);
      throw new DbfastError('SQL_META_COMMAND', message, { file: source.displayPath, line, column, hint });
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
        const target = resolve(dirname(source.absolutePath), args[0]!);
        if (includeStack.includes(target) || target === source.absolutePath) {
          fail(`\\${command.name} ${args[0]} includes itself`);
        }
        const included = await readSource(target, this.displayPath(target)).catch((error: DbfastError) => {
          const { line, column } = source.lines.locate(command.offset);
          throw new DbfastError(error.code, `\\${command.name} ${args[0]}: ${error.message}`, {
            file: error.code === 'FILE_UNREADABLE' ? source.displayPath : error.file,
            line: error.code === 'FILE_UNREADABLE' ? line : error.line,
            column: error.code === 'FILE_UNREADABLE' ? column : error.column,
          });
        });
        recordRead(this.stats, included);
        await this.run(included, variables, [...includeStack, source.absolutePath]);
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
        if (name === 'ON_ERROR_STOP' && /^(off|0|false|no)$/i.test(value)) {
          fail('\\set ON_ERROR_STOP off is not supported: dbfast always stops at the first error');
        }
        if (name === 'AUTOCOMMIT' && /^(off|0|false|no)$/i.test(value)) {
          fail('\\set AUTOCOMMIT off is not supported', 'use BEGIN and COMMIT in the file');
        }
        variables.set(name, value);
        return;
      }
      case 'unset':
        if (args[0]) variables.delete(args[0]);
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
          'dbfast supports \\i, \\ir, \\include, \\echo, \\set and \\unset',
        );
    }
  }

  private displayPath(absolutePath: string): string {
    const fromRoot = relative(this.options.repositoryRoot, absolutePath);
    return fromRoot.startsWith('..') || isAbsolute(fromRoot) ? absolutePath : fromRoot.split('\\').join('/');
  }
}

/** Maps an offset in a statement's sent text back to the file, through variable substitutions. */
function sourceOffsetOf(statement: Statement, textOffset: number): number {
  const piece = statement.pieces.findLast((candidate) => candidate.textOffset <= textOffset);
  if (!piece) return statement.offset;
  return piece.substituted ? piece.sourceOffset : piece.sourceOffset + (textOffset - piece.textOffset);
}

/**
 * A runtime error in a DO block names the line of its body (`inline_code_block line 3`); the
 * body's line 1 is the one holding the opening dollar quote. Points at that line's first token.
 */
function doBlockLineOffset(error: Error, statement: Statement, source: Source): number | undefined {
  const bodyLine = Number(/^PL\/pgSQL function inline_code_block line (\d+)/.exec((error as pg.DatabaseError).where ?? '')?.[1]);
  const quote = /\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$/.exec(statement.text);
  if (statement.words[0] !== 'do' || !bodyLine || !quote) return undefined;
  const firstLine = source.lines.locate(sourceOffsetOf(statement, quote.index)).line;
  const lineStart = source.lines.offsetOfLine(firstLine + bodyLine - 1);
  const indent = /^[ \t]*/.exec(source.text.slice(lineStart))![0].length;
  return lineStart + indent;
}

/** Errors in COPY data name the data line (`COPY actor, line 17`): point at that line of the file. */
function copyErrorOffset(error: pg.DatabaseError, statement: Statement, source: Source): number {
  const dataLine = Number(/^COPY [^,]+, line (\d+)/.exec(error.where ?? '')?.[1]);
  if (!dataLine || !statement.copy) return statement.offset;
  const firstLine = source.lines.locate(statement.copy.offset).line;
  return source.lines.offsetOfLine(firstLine + dataLine - 1);
}

function sqlError(error: Error, source: Source, offset: number): DbfastError {
  const { line, column } = source.lines.locate(offset);
  const database = error as pg.DatabaseError;
  const detail = [database.detail && `DETAIL: ${database.detail}`, database.where && `CONTEXT: ${database.where}`]
    .filter(Boolean)
    .join('\n');
  return new DbfastError('SQL_FAILED', error.message, {
    file: source.displayPath,
    line,
    column,
    detail: detail || undefined,
    hint: database.hint,
    cause: error,
  });
}
