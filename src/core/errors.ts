/**
 * The one error type dbfast throws on purpose. Callers branch on `code`, never on message text;
 * the CLI maps codes to exit codes in `exitCodeFor` and formats the structured fields.
 */
export type ErrorCode =
  | 'USAGE'
  | 'ENVIRONMENT_REQUIRED'
  | 'CONFIG_NOT_FOUND'
  | 'CONFIG_INVALID'
  | 'CONFIG_EXISTS'
  | 'REPOSITORY_NOT_FOUND'
  | 'REPOSITORY_EMPTY'
  | 'SYMLINK_LOOP'
  | 'FILE_UNREADABLE'
  | 'FILE_ENCODING'
  | 'SQL_SYNTAX'
  | 'SQL_META_COMMAND'
  | 'SQL_FAILED'
  | 'OUTSIDE_DATABASE'
  | 'VALIDATION_FAILED'
  | 'TIMEOUT'
  | 'SERVER_START_FAILED'
  | 'SERVER_UNREACHABLE'
  | 'DATABASE_NOT_FOUND'
  | 'AUTH_FAILED'
  | 'PORT_IN_USE'
  | 'TOOL_NOT_FOUND'
  | 'TOOL_FAILED'
  | 'BACKUP_CORRUPT'
  | 'RESTORE_FAILED'
  | 'NOT_CONFIRMED'
  | 'DESTRUCTIVE_REFUSED'
  | 'DRIFT'
  | 'REMOTE_NOT_READY'
  | 'STATE_DIR_UNUSABLE'
  | 'ALREADY_RUNNING';

export interface ErrorLocation {
  /** Path relative to the repository (or the config file's folder), as users see it. */
  file?: string;
  line?: number;
  column?: number;
}

/** What PostgreSQL said about a failed statement (node-postgres' DatabaseError), for programs to branch on. */
export interface ServerErrorFields {
  /** SQLSTATE, e.g. `23505`. */
  sqlState?: string;
  schema?: string;
  table?: string;
  columnName?: string;
  constraint?: string;
}

export interface DbfastErrorFields extends ErrorLocation, ServerErrorFields {
  hint?: string;
  /** PostgreSQL's DETAIL, or any extra line worth showing under the message. */
  detail?: string;
  cause?: unknown;
}

export class DbfastError extends Error {
  readonly code: ErrorCode;
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
  readonly hint?: string;
  readonly detail?: string;
  readonly sqlState?: string;
  readonly schema?: string;
  readonly table?: string;
  readonly columnName?: string;
  readonly constraint?: string;

  constructor(code: ErrorCode, message: string, fields: DbfastErrorFields = {}) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = 'DbfastError';
    this.code = code;
    this.file = fields.file;
    this.line = fields.line;
    this.column = fields.column;
    this.hint = fields.hint;
    this.detail = fields.detail;
    this.sqlState = fields.sqlState;
    this.schema = fields.schema;
    this.table = fields.table;
    this.columnName = fields.columnName;
    this.constraint = fields.constraint;
  }

  /** The same error, location and server fields included, with another hint (this error as its cause). */
  withHint(hint: string | undefined): DbfastError {
    const { code, message, file, line, column, detail, sqlState, schema, table, columnName, constraint } = this;
    return new DbfastError(code, message, { file, line, column, detail, sqlState, schema, table, columnName, constraint, hint, cause: this });
  }

  /** `file:line:column: message`, with as much of the location as is known. */
  get located(): string {
    if (this.file === undefined) return this.message;
    const parts = [this.file, this.line, this.column].filter((p) => p !== undefined);
    return `${parts.join(':')}: ${this.message}`;
  }
}

const USAGE_OR_CONFIGURATION: ReadonlySet<ErrorCode> = new Set([
  'USAGE',
  'ENVIRONMENT_REQUIRED',
  'CONFIG_NOT_FOUND',
  'CONFIG_INVALID',
  'CONFIG_EXISTS',
  'REPOSITORY_NOT_FOUND',
  'REPOSITORY_EMPTY',
]);

/**
 * 0 ok, 1 failure, 2 usage or configuration (documented in the README). What the machine lacks (a
 * PostgreSQL program, a writable state folder) is a failure like an unreachable server, even when
 * a variable (DBFAST_PG_BIN, DBFAST_STATE_DIR) pointed there: 2 is for the command line and dbfast.toml.
 */
export function exitCodeFor(error: unknown): 1 | 2 {
  return error instanceof DbfastError && USAGE_OR_CONFIGURATION.has(error.code) ? 2 : 1;
}

export function isDbfastError(error: unknown, code?: ErrorCode): error is DbfastError {
  return error instanceof DbfastError && (code === undefined || error.code === code);
}
