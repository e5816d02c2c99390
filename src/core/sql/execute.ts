/**
 * Executes SQL files the way `psql -v ON_ERROR_STOP=1 -f FILE` does, file after file, each file
 * starting from a session like the new connection psql would open. Consecutive statements are
 * sent together to save round trips, except those PostgreSQL refuses inside a transaction block.
 * Files are read as streams: memory stays bounded by the largest statement, whatever the file size.
 */
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import type pg from 'pg';
import { DbfastError } from '../errors.js';
import { isPsqlCommand, OUTPUT_SETTINGS } from './commands.js';
import { ConditionalStack, parseBoolean } from './conditional.js';
import { canonicalEncoding, encodingSetBy, SUPPORTED_ENCODINGS } from './encoding.js';
import { queryRows, storeRow } from './gset.js';
import { DOLLAR_QUOTE, Lexer, lexScript, type MetaCommand, type Statement, type Variables } from './lexer.js';
import { parseMetaArgs } from './meta.js';
import { advance, codeUnitOffset, type Location } from './position.js';
import { type BatchFailure, runBatch, runCopyIn } from './protocol.js';
import { copyFromFile, hashFile, parseSlashCopy } from './slash-copy.js';
import { SourceReader } from './source.js';
import { addsEnumValue, refusedInTransaction } from './transactional.js';

export interface SqlFile {
  absolutePath: string;
  /** Shown in progress and errors, e.g. `1_seed/02_users.sql`. */
  relativePath: string;
  /** sha256 hex the caller hashed; when the bytes read differ (edited since), the file is listed in `includedFiles`. */
  hash?: string;
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
  /** `\echo` output (and `\conninfo`'s line): what psql prints on standard output. */
  onEcho?: (text: string) => void;
  /** `\warn` output: what psql prints on standard error. */
  onWarn?: (text: string) => void;
  /**
   * A statement that failed while ON_ERROR_STOP was off (psql reports it and goes on), or one whose
   * effect lies outside the database the files run in (CREATE DATABASE).
   */
  onWarning?: (warning: DbfastError) => void;
  /** Stops between statements once aborted (a statement already running is the caller's to cancel). */
  signal?: AbortSignal;
  /**
   * The files run inside a transaction the caller opened and commits (a migrate deploy). Each
   * file starts from a session reset by statements a transaction allows, and a file's own BEGIN,
   * COMMIT and ROLLBACK become a savepoint, its release and a rollback to it: the file stays
   * atomic in itself, and nothing it says ends the caller's transaction.
   */
  inTransaction?: boolean;
}

export interface ExecutionStats {
  files: number;
  statements: number;
  rowsCopied: number;
  /** Statements that failed while ON_ERROR_STOP was off. */
  failedStatements: number;
  /**
   * Every file read besides `files` (\i and nested includes, \copy data), once per path and
   * content, with the sha256 hex of the bytes read; also a file of `files` whose bytes differ
   * from its `hash`.
   */
  includedFiles: FileRead[];
}

export interface FileRead {
  absolutePath: string;
  hash: string;
}

const DEFAULT_BATCH_BYTES = 1 << 20;

/** Runs `files` in order; throws a located DbfastError at the first failure (while ON_ERROR_STOP is on). */
export async function executeFiles(session: SqlSession, files: SqlFile[], options: ExecuteOptions): Promise<ExecutionStats> {
  const stats: ExecutionStats = { files: 0, statements: 0, rowsCopied: 0, failedStatements: 0, includedFiles: [] };
  let defaultsChanged = false;
  for (const [index, file] of files.entries()) {
    options.onFileStart?.(file, index, files.length);
    // Each file gets the session a fresh `psql -f` would: no SET, role or temp table leaks in.
    if (options.inTransaction) await resetInTransaction(session.client);
    else if (index > 0) {
      if (defaultsChanged) await session.reconnect();
      else await session.client.query('DISCARD ALL');
    }
    const runner = new ScriptRunner(session.client, options, stats);
    const reader = SourceReader.open(file.absolutePath, file.relativePath);
    const hash = await runner.run(reader, psqlVariables(session.client), []);
    if (file.hash !== undefined && hash !== file.hash) recordRead(stats, { absolutePath: file.absolutePath, hash });
    await runner.finishFile(file.relativePath);
    defaultsChanged = runner.changedSessionDefaults;
    stats.files++;
  }
  return stats;
}

/**
 * DISCARD ALL, but for pg_advisory_unlock_all (the caller's locks stay) and in statements a
 * transaction block allows: RESET ALL returns settings to the values the connection started with.
 */
const RESET_IN_TRANSACTION = 'CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; DEALLOCATE ALL; UNLISTEN *; DISCARD PLANS; DISCARD TEMP; DISCARD SEQUENCES';

/** Resets the session as executeFiles does before each file with `inTransaction`. */
export async function resetInTransaction(client: pg.Client): Promise<void> {
  await client.query(RESET_IN_TRANSACTION);
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
  const [first, second] = words;
  if (refusedInTransaction(words) || words.includes('concurrently')) return true;
  if (first === 'set') return second === 'local' || second === 'transaction';
  return first === 'vacuum' || first === 'reindex' || first === 'cluster' || first === 'call' || first === 'do';
}

function startsTransaction(words: string[]): boolean {
  return words[0] === 'begin' || (words[0] === 'start' && words[1] === 'transaction');
}

type TransactionControl = 'begin' | 'commit' | 'rollback' | 'unsupported';

/**
 * What a statement does to the transaction: BEGIN, COMMIT (END), ROLLBACK (ABORT); `unsupported`
 * for the forms no savepoint can stand for (AND CHAIN, PREPARE TRANSACTION); null for the rest,
 * ROLLBACK TO SAVEPOINT and COMMIT PREPARED included.
 */
function transactionControl(words: string[]): TransactionControl | null {
  const [first, second, third] = words;
  if (startsTransaction(words)) return 'begin';
  if (first === 'prepare' && second === 'transaction') return 'unsupported';
  if (first !== 'commit' && first !== 'end' && first !== 'rollback' && first !== 'abort') return null;
  if (second === 'to' || second === 'prepared' || third === 'to') return null;
  if (words.includes('chain') && !words.includes('no')) return 'unsupported';
  return first === 'commit' || first === 'end' ? 'commit' : 'rollback';
}

/** The leading words of the first statement of `text` (a value \gexec runs, a statement's sent text). */
function wordsOf(text: string): string[] {
  try {
    for (const segment of lexScript(text, { file: '' })) if (segment.kind === 'statement') return segment.words;
  } catch {
    // Not lexable as SQL: the server will say what is wrong with it.
  }
  return [];
}

/** A file's own transaction, inside the caller's (ExecuteOptions.inTransaction). */
const FILE_SAVEPOINT = 'dbfast_file';


/** ALTER DATABASE/ROLE/USER ... SET|RESET: what a new connection starts with, not the current session. */
function changesSessionDefaults(words: string[]): boolean {
  const [first, second] = words;
  return first === 'alter' && (second === 'database' || second === 'role' || second === 'user') && (words.includes('set') || words.includes('reset'));
}

/**
 * What locating an error in a sent statement needs, and no more: a batch holds thousands of these
 * while the server runs it, and everything they hold is memory that outlives young collections.
 */
interface Sent {
  location: Location;
  source: string;
  pieces: Statement['pieces'];
  /** The text of a DO statement, where errors name a line of the block. */
  doText?: string;
}

function sent(statement: Statement): Sent {
  const { location, source, pieces, words, text } = statement;
  return words[0] === 'do' ? { location, source, pieces, doText: text } : { location, source, pieces };
}

interface Entry {
  statement: Sent;
  file: string;
  textOffset: number;
}

interface Pending {
  entries: Entry[];
  text: string;
}

/** A file of an include chain: where it is and how it is shown. */
type IncludingFile = Pick<SourceReader, 'absolutePath' | 'displayPath'>;

/** One file being run: what its meta-commands read and change. */
interface FileContext {
  reader: SourceReader;
  lexer: Lexer;
  variables: Variables;
  /** The files that included this one, outermost first. */
  includeStack: IncludingFile[];
  /** As in psql, each file (an included one too) has its own \if stack. */
  conditional: ConditionalStack;
}

class ScriptRunner {
  private batch: Pending = { entries: [], text: '' };
  private inFlight: Promise<void> | null = null;
  private readonly batchBytes: number;
  private stopOnError = true;
  /** Set by `\restrict` (pg_dump's first line): until `\unrestrict` with this key, no other meta-command runs. */
  private restrictKey: string | undefined;
  /**
   * The session's client encoding, as psql's would be: a file set it at its top, or inherited it;
   * a file included after one that set it is read in it.
   */
  private encoding = 'UTF8';
  /** The file ran ALTER DATABASE/ROLE ... SET: the next file needs a new connection to see it. */
  changedSessionDefaults = false;
  /** inTransaction: the file's own BEGIN opened FILE_SAVEPOINT, not yet released. */
  private inFileTransaction = false;

  constructor(
    private readonly client: pg.Client,
    private readonly options: ExecuteOptions,
    private readonly stats: ExecutionStats,
  ) {
    this.batchBytes = options.batchBytes ?? DEFAULT_BATCH_BYTES;
  }

  /**
   * Runs one file (the top-level one or an included one); returns the sha256 of its bytes. A file
   * is read in the session's encoding, unless it starts by setting another.
   */
  async run(reader: SourceReader, variables: Variables, includeStack: IncludingFile[]): Promise<string> {
    const { displayPath } = reader;
    try {
      this.encoding = leadingEncoding(reader.peek(), displayPath) ?? this.encoding;
      reader.setEncoding(this.encoding);
      const lexer = new Lexer(reader, { file: displayPath, variables });
      const file: FileContext = { reader, lexer, variables, includeStack, conditional: new ConditionalStack() };
      for (const segment of lexer.segments()) {
        this.options.signal?.throwIfAborted();
        if (segment.kind === 'meta') {
          await this.drain();
          await this.meta(segment, file);
        } else if (!file.conditional.active) {
          if (segment.copyFromStdin) throw skippedCopyData(lexer, displayPath);
        } else {
          if (segment.sentBy) this.checkMeta(segment.sentBy, displayPath);
          await this.statement(segment, file);
        }
      }
      await this.drain();
      const unclosed = file.conditional.unclosed;
      if (unclosed) throw new DbfastError('SQL_META_COMMAND', 'reached EOF without finding closing \\endif(s)', { file: displayPath, ...unclosed });
      return reader.digest();
    } finally {
      reader.close();
    }
  }

  private async statement(statement: Statement, file: FileContext): Promise<void> {
    const { words } = statement;
    const displayPath = file.reader.displayPath;
    const encodingName = encodingSetBy(statement.text, words);
    if (encodingName !== undefined) return this.checkEncoding(encodingName, file.reader.encoding, displayPath, statement.location);
    if (changesSessionDefaults(words)) this.changedSessionDefaults = true;
    if (words[0] === 'create' && words[1] === 'database') this.warnOutside(displayPath, statement.location);
    // A variable may stand for the keyword (`\set c COMMIT` then `:c;`): then the sent text decides.
    const control = this.options.inTransaction ? transactionControl(statement.pieces.some((piece) => piece.substituted) ? wordsOf(statement.text) : words) : null;
    if (control) {
      await this.drain();
      return this.fileTransaction(control, statement, displayPath);
    }
    if (statement.sentBy?.name === 'gset') {
      await this.drain();
      await this.gset(statement, statement.sentBy, file);
    } else if (statement.sentBy?.name === 'gexec') {
      await this.drain();
      await this.gexec(statement, statement.sentBy, displayPath);
    } else if (statement.copyFromStdin) {
      await this.drain();
      this.stats.statements++;
      await this.copyIn(statement.text, file.lexer, displayPath, statement.location);
    } else if (startsTransaction(words)) {
      // Statements before BEGIN must not become part of the transaction it opens.
      await this.drain();
      this.add(statement, displayPath);
    } else if (runsAlone(words) || !this.stopOnError) {
      // Without ON_ERROR_STOP each statement is its own implicit transaction, as psql sends them.
      await this.drain();
      this.add(statement, displayPath);
      await this.flush();
    } else {
      this.add(statement, displayPath);
      // A batch is one implicit transaction, and a new enum value is usable only after the one that added it.
      if (this.batch.text.length >= this.batchBytes || addsEnumValue(words)) await this.flush();
    }
  }

  /**
   * In the caller's transaction, a file's BEGIN opens a savepoint, COMMIT releases it and ROLLBACK
   * rolls back to it; BEGIN inside the file's transaction and COMMIT or ROLLBACK outside it change
   * nothing, as PostgreSQL only warns about them. (A failed statement never reaches a COMMIT here:
   * it ends the run.)
   */
  private async fileTransaction(control: TransactionControl, statement: Statement, displayPath: string): Promise<void> {
    if (control === 'unsupported') {
      throw new DbfastError('SQL_FAILED', `${statement.words.join(' ').toUpperCase()} cannot run in a deploy's transaction`, {
        file: displayPath,
        ...statement.location,
        hint: 'use BEGIN and COMMIT: in a deploy they become a savepoint of its transaction',
      });
    }
    this.stats.statements++;
    let sql: string | null = null;
    if (control === 'begin') {
      if (!this.inFileTransaction) sql = `SAVEPOINT ${FILE_SAVEPOINT}`;
      this.inFileTransaction = true;
    } else if (this.inFileTransaction) {
      sql = control === 'rollback' ? `ROLLBACK TO SAVEPOINT ${FILE_SAVEPOINT}; RELEASE SAVEPOINT ${FILE_SAVEPOINT}` : `RELEASE SAVEPOINT ${FILE_SAVEPOINT}`;
      this.inFileTransaction = false;
    }
    if (sql === null) return;
    const failure = await runBatch(this.client, sql);
    if (failure) throw sqlError(failure.error, displayPath, statement.location);
  }

  /** psql would roll back a transaction left open at the end of a file; dbfast says so instead. */
  async finishFile(displayPath: string): Promise<void> {
    const open = this.options.inTransaction ? this.inFileTransaction : this.client.getTransactionStatus() !== 'I';
    if (open) {
      await this.client.query(this.options.inTransaction ? `ROLLBACK TO SAVEPOINT ${FILE_SAVEPOINT}` : 'ROLLBACK');
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
    const canonical = encodingOrFail(name, file, location);
    if (canonical === current) return;
    throw new DbfastError('FILE_ENCODING', `client_encoding changes to ${canonical} after the file started as ${current}`, {
      file,
      ...location,
      hint: 'set client_encoding once, before any other statement of the file, or convert the file to UTF-8',
    });
  }

  private add(statement: Statement, file: string): void {
    const separator = this.batch.text ? ';\n' : '';
    const textOffset = this.batch.text.length + separator.length;
    this.batch.text += separator + statement.text;
    this.batch.entries.push({ statement: sent(statement), file, textOffset });
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

  private warnOutside(file: string, location: Location): void {
    const message = 'CREATE DATABASE makes a database on the server, outside the one being built: it stays there and is not in any clone';
    this.options.onWarning?.(
      new DbfastError('OUTSIDE_DATABASE', message, { file, ...location, hint: 'create it from a setup script of your own, not from the SQL repository' }),
    );
  }

  private failed(error: DbfastError, stopOnError: boolean): void {
    // In the caller's transaction a failed statement aborts it: nothing after it could run.
    if (stopOnError || this.options.inTransaction) throw error;
    this.stats.failedStatements++;
    this.options.onWarning?.(error);
  }

  private async drain(): Promise<void> {
    await this.flush();
    const inFlight = this.inFlight;
    this.inFlight = null;
    await inFlight;
  }

  /** COPY ... FROM STDIN (or `\copy ... FROM stdin`) with the data lines that follow in the file. */
  private async copyIn(statement: string, lexer: Lexer, file: string, location: Location): Promise<void> {
    const data = lexer.copyData();
    try {
      this.stats.rowsCopied += await runCopyIn(this.client, statement, data);
    } catch (error) {
      // Unread data was skipped when runCopyIn stopped reading it (Lexer.copyData): it is never SQL.
      if (error instanceof DbfastError) throw error;
      this.failed(sqlError(error as Error, file, copyErrorLocation(error as pg.DatabaseError, location, lexer.copyDataLine)), this.stopOnError);
    }
  }

  /** What psql checks before running any meta-command: restricted mode, and no program to start. */
  private checkMeta(command: MetaCommand, file: string): void {
    if (this.restrictKey !== undefined && command.name !== 'unrestrict') {
      throw metaError(command, file, 'backslash commands are restricted; only \\unrestrict is allowed');
    }
    if (PIPES.has(command.name) && /(^|[\s)])\|/.test(command.args)) {
      throw metaError(command, file, `\\${command.name} with a |pipe is not supported: dbfast does not run programs from SQL files`);
    }
  }

  /** `\gset`: the statement runs alone and its one row's columns become variables. */
  private async gset(statement: Statement, command: MetaCommand, file: FileContext): Promise<void> {
    const displayPath = file.reader.displayPath;
    const prefix = metaArgs(command, displayPath, file.variables)[0] ?? '';
    const result = await this.rowsOf(statement, displayPath);
    if (result === undefined) return;
    try {
      storeRow(result, prefix, file.variables);
    } catch (error) {
      this.failed(metaError(command, displayPath, (error as Error).message), this.stopOnError);
    }
  }

  /**
   * `\gexec`: the statement runs alone, then every value of its result, row by row and left to
   * right, runs as a query of its own (NULLs are skipped), as psql does; their errors are located
   * at the `\gexec` line.
   */
  private async gexec(statement: Statement, command: MetaCommand, displayPath: string): Promise<void> {
    const result = await this.rowsOf(statement, displayPath);
    for (const row of result?.rows ?? []) {
      for (const value of row) {
        if (value === null) continue;
        if (/^\s*create\s+database\b/i.test(value)) this.warnOutside(displayPath, command.location);
        if (this.options.inTransaction && transactionControl(wordsOf(value))) {
          throw metaError(command, displayPath, `\\gexec built ${value.trim().split(/\s+/)[0]!.toUpperCase()}, which would end the deploy's transaction`, 'write BEGIN and COMMIT in the file itself');
        }
        this.stats.statements++;
        const failure = await runBatch(this.client, value);
        if (failure) this.failed(sqlError(failure.error, displayPath, command.location), this.stopOnError);
      }
    }
  }

  /** Runs a statement alone for its rows (as text); undefined when it failed and ON_ERROR_STOP is off. */
  private async rowsOf(statement: Statement, displayPath: string): Promise<Awaited<ReturnType<typeof queryRows>> | undefined> {
    this.stats.statements++;
    try {
      return await queryRows(this.client, statement.text);
    } catch (error) {
      const batch = { entries: [{ statement: sent(statement), file: displayPath, textOffset: 0 }], text: statement.text };
      this.failed(locate({ error: error as Error, statementIndex: 0 }, batch), this.stopOnError);
      return undefined;
    }
  }

  /** `\copy ... FROM`: the data after the line (stdin) or a file's bytes, relative to this file's folder. */
  private async slashCopy(command: MetaCommand, file: FileContext): Promise<void> {
    const displayPath = file.reader.displayPath;
    const fail = (message: string, hint?: string): never => {
      throw metaError(command, displayPath, message, hint);
    };
    let copy: ReturnType<typeof parseSlashCopy> | undefined;
    try {
      copy = parseSlashCopy(command.args);
    } catch (error) {
      fail((error as Error).message);
    }
    const { statement, direction, source: from } = copy!;
    if (direction === 'to') fail('\\copy ... TO is not supported: dbfast builds a database and writes no files');
    if (from.kind === 'program') return fail('\\copy ... FROM PROGRAM is not supported: dbfast does not run programs from SQL files');
    if (from.kind === 'psql') {
      return fail("\\copy ... FROM pstdin reads psql's own standard input, which a build does not have", 'put the data after the \\copy line (FROM stdin) or in a file');
    }
    this.stats.statements++;
    if (from.kind === 'script') return this.copyIn(statement, file.lexer, displayPath, command.location);
    const target = resolve(dirname(file.reader.absolutePath), from.path);
    const shown = this.displayPath(target);
    try {
      const { rows, hash } = await copyFromFile(this.client, statement, target);
      recordRead(this.stats, { absolutePath: target, hash });
      this.stats.rowsCopied += rows;
    } catch (error) {
      const { code, where, message } = error as NodeJS.ErrnoException & pg.DatabaseError;
      if (code !== undefined && !/^[0-9A-Z]{5}$/.test(code)) {
        throw new DbfastError('FILE_UNREADABLE', `\\copy: cannot read ${shown}: ${code}`, { file: displayPath, ...command.location, cause: error });
      }
      // The build read this file even though the COPY failed (ON_ERROR_STOP off goes on): it decides freshness.
      recordRead(this.stats, { absolutePath: target, hash: await hashFile(target) });
      const dataLine = /^COPY [^,]+, line (\d+)/.exec(where ?? '')?.[1];
      const located = sqlError(error as Error, displayPath, command.location);
      this.failed(
        new DbfastError('SQL_FAILED', `\\copy from ${shown}${dataLine ? `, line ${dataLine}` : ''}: ${message}`, {
          file: located.file,
          line: located.line,
          column: located.column,
          detail: located.detail,
          hint: located.hint,
          cause: error,
        }),
        this.stopOnError,
      );
    }
  }

  private async meta(command: MetaCommand, file: FileContext): Promise<void> {
    const { reader, variables, conditional } = file;
    const displayPath = reader.displayPath;
    const fail = (message: string, hint?: string): never => {
      throw metaError(command, displayPath, message, hint);
    };
    // psql checks restricted mode before anything else, \if and skipped branches included.
    if (this.restrictKey !== undefined) this.checkMeta(command, displayPath);
    if (CONDITIONALS.has(command.name)) {
      if (command.inStatement) {
        fail(`\\${command.name} inside a statement is not supported`, 'end the statement before the \\if, and repeat it whole in each branch');
      }
      const evaluate = () => parseBoolean(metaArgs(command, displayPath, variables).join(' '), `\\${command.name} expression`);
      try {
        if (command.name === 'if') conditional.if(command.location, evaluate);
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
      if (command.copyFromStdin) throw skippedCopyData(file.lexer, displayPath);
      return;
    }
    this.checkMeta(command, displayPath);
    if (command.name.toLowerCase() === 'copy') {
      if (command.inStatement) fail('\\copy inside a statement is not supported', 'end the statement before the \\copy line');
      return this.slashCopy(command, file);
    }
    if (OUTPUT_SETTINGS.has(command.name)) return;
    const args = metaArgs(command, displayPath, variables);
    switch (command.name) {
      case 'i':
      case 'include':
      case 'ir':
      case 'include_relative':
        return this.include(command, args[0], file);
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
      case 'gexec':
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
        if (name === 'ON_ERROR_STOP') this.stopOnError = onErrorStop(value, fail);
        if (name === 'AUTOCOMMIT' && value !== '' && !parsesAs(value, true)) {
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
        if (args[0]) this.checkEncoding(args[0], reader.encoding, displayPath, command.location);
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

  /** `\i`, `\ir`, `\include`: relative to the including file; the file read is recorded for the fingerprint. */
  private async include(command: MetaCommand, path: string | undefined, file: FileContext): Promise<void> {
    const { reader } = file;
    if (!path) throw metaError(command, reader.displayPath, `\\${command.name} needs a file name`);
    const target = resolve(dirname(reader.absolutePath), path);
    const chain = [...file.includeStack, reader];
    const cycleStart = chain.findIndex((including) => including.absolutePath === target);
    if (cycleStart !== -1) {
      const cycle = [...chain.slice(cycleStart), chain[cycleStart]!].map((including) => including.displayPath).join(' -> ');
      throw metaError(command, reader.displayPath, `\\${command.name} ${path}: include cycle ${cycle}`);
    }
    let included: SourceReader;
    try {
      included = SourceReader.open(target, this.displayPath(target));
    } catch (error) {
      const { message } = error as DbfastError;
      throw new DbfastError('FILE_UNREADABLE', `\\${command.name} ${path}: ${message}`, { file: reader.displayPath, ...command.location });
    }
    const hash = await this.run(included, file.variables, chain);
    recordRead(this.stats, { absolutePath: target, hash });
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
  'dbfast supports \\i, \\ir, \\include, \\set, \\unset, \\if, \\elif, \\else, \\endif, \\gset, \\gexec, \\g, \\copy ... FROM, ' +
  '\\restrict, \\unrestrict, \\encoding, \\echo, \\qecho, \\warn, \\conninfo, \\setenv and the output settings ' +
  '\\pset, \\timing, \\x, \\a, \\t, \\o, \\H, \\C, \\f, \\T (ignored)';

const BOOLEAN_HINT = 'psql prints this error and skips the branch; use true, false, on, off, yes, no, 1 or 0';

function metaError(command: MetaCommand, file: string, message: string, hint?: string): DbfastError {
  return new DbfastError('SQL_META_COMMAND', message, { file, ...command.location, hint });
}

function metaArgs(command: MetaCommand, file: string, variables: Variables): string[] {
  try {
    return parseMetaArgs(command.args, variables);
  } catch (error) {
    throw metaError(command, file, (error as Error).message);
  }
}

/**
 * In a skipped \if branch psql does not run the COPY, so it reads the data lines as SQL and stops
 * at the `\.` line: "invalid command \.".
 */
function skippedCopyData(lexer: Lexer, file: string): DbfastError {
  let lines = 0;
  for (const piece of lexer.copyData()) for (let i = piece.indexOf('\n'); i !== -1; i = piece.indexOf('\n', i + 1)) lines++;
  return new DbfastError('SQL_META_COMMAND', 'invalid command \\.', {
    file,
    line: lexer.copyDataLine + lines,
    column: 1,
    hint: 'psql reads the data of a COPY in a skipped \\if branch as SQL; put the COPY outside the \\if',
  });
}

/** psql's \conninfo line, for a TCP connection or a Unix socket. */
function connectionLine(client: pg.Client): string {
  const where = client.host.startsWith('/') ? `via socket in "${client.host}"` : `on host "${client.host}"`;
  return `You are connected to database "${client.database}" as user "${client.user}" ${where} at port "${client.port}".`;
}

/**
 * For every file read besides the top-level ones (includes, data files). A file read twice with
 * different bytes is listed twice: the database holds both, so no one content is fresh.
 */
function recordRead(stats: ExecutionStats, { absolutePath, hash }: FileRead): void {
  const known = stats.includedFiles.some((read) => read.absolutePath === absolutePath && read.hash === hash);
  if (!known) stats.includedFiles.push({ absolutePath, hash });
}

function parsesAs(value: string, expected: boolean): boolean {
  try {
    return parseBoolean(value, '') === expected;
  } catch {
    return false;
  }
}

/** ON_ERROR_STOP as psql reads it: `\set ON_ERROR_STOP` alone means on; an invalid value is an error. */
function onErrorStop(value: string, fail: (message: string) => never): boolean {
  if (value === '') return true;
  try {
    return parseBoolean(value, 'ON_ERROR_STOP');
  } catch (error) {
    return fail((error as Error).message);
  }
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

/** The canonical name of a client encoding a file names; FILE_ENCODING for one dbfast cannot read. */
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
function sourceOffsetOf(statement: Sent, textOffset: number): number {
  const piece = statement.pieces.findLast((candidate) => candidate.textOffset <= textOffset);
  if (!piece) return 0;
  return piece.substituted ? piece.sourceOffset : piece.sourceOffset + (textOffset - piece.textOffset);
}

function locationIn(statement: Sent, sourceOffset: number): Location {
  return advance(statement.location, statement.source.slice(0, sourceOffset));
}

/**
 * A runtime error in a DO block names the line of its body (`PL/pgSQL function inline_code_block
 * line 3`), after `SQL statement "..."` when a statement in the block failed; the body's line 1 is
 * the one holding the opening dollar quote. Points at that line's first token.
 */
function doBlockLocation(error: Error, statement: Sent): Location | undefined {
  const bodyLine = Number(/PL\/pgSQL function inline_code_block line (\d+)/.exec((error as pg.DatabaseError).where ?? '')?.[1]);
  const quote = statement.doText === undefined ? null : DOLLAR_QUOTE.exec(statement.doText);
  if (!bodyLine || !quote) return undefined;
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
function copyErrorLocation(error: pg.DatabaseError, copyAt: Location, firstDataLine: number): Location {
  const dataLine = Number(/^COPY [^,]+, line (\d+)/.exec(error.where ?? '')?.[1]);
  if (!dataLine || !firstDataLine) return copyAt;
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
    sqlState: database.code,
    schema: database.schema,
    table: database.table,
    columnName: database.column,
    constraint: database.constraint,
    cause: error,
  });
}
