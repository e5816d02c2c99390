/**
 * Executes SQL files the way `psql -v ON_ERROR_STOP=1 -f FILE` does, over one client connection,
 * each file starting from a clean session. Consecutive statements are sent together to save
 * round trips, except those PostgreSQL refuses inside a transaction block.
 */
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import type pg from 'pg';
import { DbfastError } from '../errors.js';
import { isPsqlCommand, OUTPUT_SETTINGS } from './commands.js';
import { ConditionalStack, parseBoolean } from './conditional.js';
import { queryRows, storeRow } from './gset.js';
import { lexScript, type MetaCommand, type Statement, type Variables } from './lexer.js';
import { parseMetaArgs } from './meta.js';
import { codeUnitOffset } from './position.js';
import { type BatchFailure, runBatch, runCopyIn } from './protocol.js';
import { copyFromFile, parseSlashCopy } from './slash-copy.js';
import { readSource, type Source } from './source.js';

export interface SqlFile {
  absolutePath: string;
  /** Shown in progress and errors, e.g. `1_seed/02_users.sql`. */
  relativePath: string;
}

export interface ExecuteOptions {
  /** Files included with \i that lie inside this folder are shown relative to it. */
  repositoryRoot: string;
  /** Flush a batch of statements once it holds this many bytes. */
  batchBytes?: number;
  onFileStart?: (file: SqlFile, index: number, total: number) => void;
  /** `\echo` output (and `\conninfo`'s line): what psql prints on standard output. */
  onEcho?: (text: string) => void;
  /** `\warn` output: what psql prints on standard error. */
  onWarn?: (text: string) => void;
  /** Stops between statements once aborted (a statement already running is the caller's to cancel). */
  signal?: AbortSignal;
}

export interface ExecutionStats {
  files: number;
  statements: number;
  rowsCopied: number;
}

const DEFAULT_BATCH_BYTES = 1 << 20;

/** Runs `files` in order on `client`; throws a located DbfastError at the first failure. */
export async function executeFiles(client: pg.Client, files: SqlFile[], options: ExecuteOptions): Promise<ExecutionStats> {
  const stats: ExecutionStats = { files: 0, statements: 0, rowsCopied: 0 };
  for (const [index, file] of files.entries()) {
    options.onFileStart?.(file, index, files.length);
    // Each file gets the session a fresh `psql -f` would: no SET, role or temp table leaks in.
    if (index > 0) await client.query('DISCARD ALL');
    const runner = new ScriptRunner(client, options, stats);
    const source = await readSource(file.absolutePath, file.relativePath);
    await runner.run(source, psqlVariables(client), []);
    await runner.finishFile(source);
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
  /** Set by `\restrict` (pg_dump's first line): until `\unrestrict` with this key, no other meta-command runs. */
  private restrictKey: string | undefined;

  constructor(
    private readonly client: pg.Client,
    private readonly options: ExecuteOptions,
    private readonly stats: ExecutionStats,
  ) {
    this.batchBytes = options.batchBytes ?? DEFAULT_BATCH_BYTES;
  }

  async run(source: Source, variables: Variables, includeStack: string[]): Promise<void> {
    // As in psql, each file (an included one too) has its own \if stack.
    const conditional = new ConditionalStack();
    for (const segment of lexScript(source.text, { file: source.displayPath, variables })) {
      this.options.signal?.throwIfAborted();
      if (segment.kind === 'statement' && segment.sentBy && conditional.active) this.checkMeta(segment.sentBy, source);
      if (segment.kind === 'meta') {
        await this.drain();
        await this.meta(segment, source, variables, includeStack, conditional);
      } else if (!conditional.active) {
        if (segment.copy) throw skippedCopyData(segment.copy, source);
      } else if (segment.sentBy?.name === 'gset') {
        await this.drain();
        await this.gset(segment, segment.sentBy, source, variables);
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
    if (conditional.unclosed !== undefined) {
      const { line, column } = source.lines.locate(conditional.unclosed);
      throw new DbfastError('SQL_META_COMMAND', 'reached EOF without finding closing \\endif(s)', { file: source.displayPath, line, column });
    }
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

  /** What psql checks before running any meta-command: restricted mode, and no program to start. */
  private checkMeta(command: MetaCommand, source: Source): void {
    if (this.restrictKey !== undefined && command.name !== 'unrestrict') {
      throw metaError(command, source, 'backslash commands are restricted; only \\unrestrict is allowed');
    }
    if (PIPES.has(command.name) && /(^|[\s)])\|/.test(command.args)) {
      throw metaError(command, source, `\\${command.name} with a |pipe is not supported: dbfast does not run programs from SQL files`);
    }
  }

  /** `\gset`: the statement runs alone and its one row's columns become variables. */
  private async gset(statement: Statement, command: MetaCommand, source: Source, variables: Variables): Promise<void> {
    const prefix = this.metaArgs(command, source, variables)[0] ?? '';
    this.stats.statements++;
    const result = await queryRows(this.client, statement.text).catch((error: Error) => {
      throw this.locate({ error, statementIndex: 0 }, { statements: [{ statement, source, textOffset: 0 }], text: statement.text });
    });
    try {
      storeRow(result, prefix, variables);
    } catch (error) {
      throw metaError(command, source, (error as Error).message);
    }
  }

  /** `\copy ... FROM`: the data after the line (stdin) or a file's bytes, relative to this file's folder. */
  private async slashCopy(command: MetaCommand, source: Source): Promise<void> {
    const fail = (message: string, hint?: string): never => {
      throw metaError(command, source, message, hint);
    };
    let copy: ReturnType<typeof parseSlashCopy> | undefined;
    try {
      copy = parseSlashCopy(command.args);
    } catch (error) {
      fail((error as Error).message);
    }
    const { statement, direction, source: from } = copy!;
    if (direction === 'to') fail('\\copy ... TO is not supported: dbfast builds a database and writes no files');
    if (from.kind === 'program') fail('\\copy ... FROM PROGRAM is not supported: dbfast does not run programs from SQL files');
    if (from.kind === 'psql') {
      fail("\\copy ... FROM pstdin reads psql's own standard input, which a build does not have", 'put the data after the \\copy line (FROM stdin) or in a file');
    }
    this.stats.statements++;
    if (from.kind === 'script') {
      try {
        this.stats.rowsCopied += await runCopyIn(this.client, statement, command.copy!.data);
      } catch (error) {
        throw sqlError(error as Error, source, copyErrorOffset(error as pg.DatabaseError, command, source));
      }
      return;
    }
    if (from.kind !== 'file') return;
    const target = resolve(dirname(source.absolutePath), from.path);
    const shown = this.displayPath(target);
    try {
      const { rows } = await copyFromFile(this.client, statement, target);
      // Issue 7 point 1: record { absolutePath: target, hash } in ExecutionStats.includedFiles here.
      this.stats.rowsCopied += rows;
    } catch (error) {
      const { code, where, message } = error as NodeJS.ErrnoException & pg.DatabaseError;
      if (code !== undefined && !/^[0-9A-Z]{5}$/.test(code)) {
        const { line, column } = source.lines.locate(command.offset);
        throw new DbfastError('FILE_UNREADABLE', `\\copy: cannot read ${shown}: ${code}`, { file: source.displayPath, line, column, cause: error });
      }
      const dataLine = /^COPY [^,]+, line (\d+)/.exec(where ?? '')?.[1];
      const located = sqlError(error as Error, source, command.offset);
      throw new DbfastError('SQL_FAILED', `\\copy from ${shown}${dataLine ? `, line ${dataLine}` : ''}: ${message}`, {
        file: located.file,
        line: located.line,
        column: located.column,
        detail: located.detail,
        hint: located.hint,
        cause: error,
      });
    }
  }

  private metaArgs(command: MetaCommand, source: Source, variables: Variables): string[] {
    try {
      return parseMetaArgs(command.args, variables);
    } catch (error) {
      throw metaError(command, source, (error as Error).message);
    }
  }

  private async copy(statement: Statement, source: Source): Promise<void> {
    this.stats.statements++;
    try {
      this.stats.rowsCopied += await runCopyIn(this.client, statement.text, statement.copy!.data);
    } catch (error) {
      throw sqlError(error as Error, source, copyErrorOffset(error as pg.DatabaseError, statement, source));
    }
  }

  private async meta(
    command: MetaCommand,
    source: Source,
    variables: Variables,
    includeStack: string[],
    conditional: ConditionalStack,
  ): Promise<void> {
    const fail = (message: string, hint?: string): never => {
      throw metaError(command, source, message, hint);
    };
    // psql checks restricted mode before anything else, \if and skipped branches included.
    if (this.restrictKey !== undefined) this.checkMeta(command, source);
    if (CONDITIONALS.has(command.name)) {
      if (command.inStatement) {
        fail(`\\${command.name} inside a statement is not supported`, 'end the statement before the \\if, and repeat it whole in each branch');
      }
      const evaluate = () => parseBoolean(this.metaArgs(command, source, variables).join(' '), `\\${command.name} expression`);
      try {
        if (command.name === 'if') conditional.if(command.offset, evaluate);
        else if (command.name === 'elif') conditional.elif(evaluate);
        else if (command.name === 'else') conditional.else();
        else conditional.endif();
      } catch (error) {
        if (error instanceof DbfastError) throw error;
        fail((error as Error).message, /Boolean expected/.test((error as Error).message) ? BOOLEAN_HINT : undefined);
      }
      return;
    }
    if (!conditional.active) {
      // psql skips a known command without reading its arguments, but fails on an unknown one.
      if (!isPsqlCommand(command.name)) fail(`invalid command \\${command.name}`, SUPPORTED);
      if (command.copy) throw skippedCopyData(command.copy, source);
      return;
    }
    this.checkMeta(command, source);
    if (command.name.toLowerCase() === 'copy') return this.slashCopy(command, source);
    if (OUTPUT_SETTINGS.has(command.name)) return;
    const args = this.metaArgs(command, source, variables);
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
        await this.run(included, variables, [...includeStack, source.absolutePath]);
        return;
      }
      case 'echo':
      case 'qecho':
        this.options.onEcho?.(args.join(' '));
        return;
      case 'warn':
        this.options.onWarn?.(args.join(' '));
        return;
      case 'conninfo':
        this.options.onEcho?.(connectionLine(this.client));
        return;
      case 'setenv':
        return; // changes the environment of the programs psql starts, and dbfast starts none
      case 'restrict':
        if (!args[0]) fail('\\restrict: missing required argument');
        this.restrictKey = args[0];
        return;
      case 'unrestrict':
        if (!args[0]) fail('\\unrestrict: missing required argument');
        if (this.restrictKey === undefined) fail('\\unrestrict: not currently in restricted mode');
        if (args[0] !== this.restrictKey) fail('\\unrestrict: wrong key');
        this.restrictKey = undefined;
        return;
      case 'g':
      case 'gx':
      case 'gset':
        return fail(
          `\\${command.name} with an empty query buffer is not supported: psql would run the previous query again`,
          `write the query right before \\${command.name}, without a semicolon`,
        );
      case 'getenv':
        return fail(
          "\\getenv is not supported: the template's fingerprint does not cover the environment, so a template built with one value would be handed out for another",
          'set the value in the file with \\set',
        );
      case 'prompt':
        return fail('\\prompt is not supported: a build reads no input from a terminal', 'set the value in the file with \\set');
      case '!':
        return fail('\\! is not supported: dbfast does not run programs from SQL files');
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
        return fail(isPsqlCommand(command.name) ? `unsupported psql meta-command \\${command.name}` : `invalid command \\${command.name}`, SUPPORTED);
    }
  }

  private displayPath(absolutePath: string): string {
    const fromRoot = relative(this.options.repositoryRoot, absolutePath);
    return fromRoot.startsWith('..') || isAbsolute(fromRoot) ? absolutePath : fromRoot.split('\\').join('/');
  }
}

const CONDITIONALS = new Set(['if', 'elif', 'else', 'endif']);

/** Meta-commands whose output can go to `|program`. */
const PIPES = new Set(['o', 'out', 'g', 'gx']);

const SUPPORTED =
  'dbfast supports \\i, \\ir, \\include, \\set, \\unset, \\if, \\elif, \\else, \\endif, \\gset, \\g, \\copy ... FROM, ' +
  '\\restrict, \\unrestrict, \\echo, \\qecho, \\warn, \\conninfo, \\setenv and the output settings ' +
  '\\pset, \\timing, \\x, \\a, \\t, \\o, \\H, \\C, \\f, \\T (ignored)';

const BOOLEAN_HINT = 'psql prints this error and skips the branch; use true, false, on, off, yes, no, 1 or 0';

function metaError(command: MetaCommand, source: Source, message: string, hint?: string): DbfastError {
  const { line, column } = source.lines.locate(command.offset);
  return new DbfastError('SQL_META_COMMAND', message, { file: source.displayPath, line, column, hint });
}

/**
 * In a skipped \if branch psql does not run the COPY, so it reads the data lines as SQL and stops
 * at the `\.` line: "invalid command \.".
 */
function skippedCopyData(copy: { data: string; offset: number }, source: Source): DbfastError {
  const { line, column } = source.lines.locate(copy.offset + copy.data.length);
  return new DbfastError('SQL_META_COMMAND', 'invalid command \\.', {
    file: source.displayPath,
    line,
    column,
    hint: 'psql reads the data of a COPY in a skipped \\if branch as SQL; put the COPY outside the \\if',
  });
}

/** psql's \conninfo line, for a TCP connection or a Unix socket. */
function connectionLine(client: pg.Client): string {
  const where = client.host.startsWith('/') ? `via socket in "${client.host}"` : `on host "${client.host}"`;
  return `You are connected to database "${client.database}" as user "${client.user}" ${where} at port "${client.port}".`;
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
function copyErrorOffset(error: pg.DatabaseError, statement: Pick<Statement, 'offset' | 'copy'>, source: Source): number {
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
