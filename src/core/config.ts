import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import * as v from 'valibot';
import { DbfastError } from './errors.js';
import { TEMPLATE_NAME_PATTERN } from './names.js';
import { closest } from './suggest.js';

export const CONFIG_FILE_NAME = 'dbfast.toml';

/** A configured (non-embedded) server. */
export interface DatabaseSettings {
  url?: string;
  host?: string;
  port?: number;
  user?: string;
  /** Maintenance database to connect to, e.g. 'postgres'. */
  database?: string;
  /** Name of an environment variable holding the password. */
  passwordEnv?: string;
  /** Absolute path (resolved relative to the config file's folder). */
  passwordFile?: string;
}

export interface RepositorySettings {
  path: string;
  include: string[];
  exclude: string[];
}

export interface EnvironmentSettings {
  includeDirectories?: string[];
  excludeDirectories?: string[];
  includeFiles?: string[];
  excludeFiles?: string[];
  templateName?: string;
  description?: string;
}

export interface RemoteSettings extends DatabaseSettings {
  name: string;
  environment?: string;
  requireConfirmation: boolean;
  allowDestructive: boolean;
  backupBeforeDeploy: boolean;
}

export interface PerformanceSettings {
  maxConcurrentClones: number;
  cloneTimeoutMs: number;
  /** 0 means no limit. */
  buildTimeoutMs: number;
  statementBatchBytes: number;
  /** CREATE DATABASE strategy on PostgreSQL 15+: FILE_COPY measured faster here at 8 MB and 886 MB. */
  cloneStrategy: 'file_copy' | 'wal_log';
}

export interface TestQuery {
  query: string;
  minExpectedResults: number;
}

export interface ValidationSettings {
  requiredTables: string[];
  requiredFunctions: string[];
  testQueries: TestQuery[];
}

export interface BackupSettings {
  directory: string;
  retentionDays?: number;
  maxBackups?: number;
  format: 'custom' | 'plain' | 'directory';
}

export interface ConfigWarning {
  file: string;
  key: string;
  message: string;
  hint?: string;
}

export interface DbfastConfig {
  /** Absolute path of the dbfast.toml used, null when none exists. */
  configPath: string | null;
  /** Folder of dbfast.toml, or cwd when none. */
  projectDir: string;
  /** `<projectDir>/.dbfast`, or $DBFAST_STATE_DIR resolved against cwd. */
  stateDir: string;
  /** stateDir came from DBFAST_STATE_DIR (errors name the variable). */
  stateDirFromEnv?: boolean;
  /** null means dbfast manages an embedded server. */
  database: DatabaseSettings | null;
  templateName: string;
  defaultEnvironment?: string;
  repository: RepositorySettings;
  environments: Record<string, EnvironmentSettings>;
  remotes: Record<string, RemoteSettings>;
  performance: PerformanceSettings;
  validation: ValidationSettings;
  backups: BackupSettings;
  warnings: ConfigWarning[];
}

export interface LoadConfigOptions {
  /** `--config PATH`, relative to cwd. */
  configPath?: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

// Template names get suffixes appended for clones and builds; 50 bytes leaves room under
// PostgreSQL's 63-byte identifier limit. ASCII-only, so characters and bytes coincide.
const TEMPLATE_NAME_MAX_LENGTH = 50;
export const TEMPLATE_NAME_EXPECTATION =
  `must be a lowercase identifier (a-z, 0-9 and _, not starting with a digit) ` +
  `of at most ${TEMPLATE_NAME_MAX_LENGTH} characters`;

export function isValidTemplateName(name: string): boolean {
  return TEMPLATE_NAME_PATTERN.test(name) && name.length <= TEMPLATE_NAME_MAX_LENGTH;
}

/** `<slug of the folder name>_template`, always a valid template name. */
export function defaultTemplateName(projectDir: string): string {
  const slug = path
    .basename(path.resolve(projectDir))
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/_+/g, '_')
    .replace(/^_|_$/g, '');
  if (slug === '') return 'dbfast_template';
  const identifier = /^[0-9]/.test(slug) ? `_${slug}` : slug;
  return `${identifier.slice(0, 40).replace(/_$/, '')}_template`;
}

// ---- schema of dbfast.toml -------------------------------------------------------------

const TABLE = 'must be a table';
const STRING = 'must be a string';

function isTable(value: unknown): value is Record<string, unknown> {
  return Object.prototype.toString.call(value) === '[object Object]';
}

// valibot's object() and record() also accept arrays and dates, which TOML can produce where a
// table belongs, and they build a new output: so the table check has to come first.
function table<const Entries extends v.ObjectEntries>(entries: Entries) {
  const schema = v.object(entries, TABLE);
  return v.pipe(v.custom<v.InferInput<typeof schema>>(isTable, TABLE), schema);
}

function tableOf<const Item extends v.GenericSchema>(item: Item) {
  const schema = v.record(v.string(), item, TABLE);
  return v.pipe(v.custom<v.InferInput<typeof schema>>(isTable, TABLE), schema);
}

const text = () => v.optional(v.string(STRING));
const flag = () => v.optional(v.boolean('must be true or false'));
const stringList = () =>
  v.optional(
    v.custom<string[]>(
      (value) => Array.isArray(value) && value.every((item) => typeof item === 'string'),
      'must be a list of strings',
    ),
  );

function integerAtLeast(min: 0 | 1) {
  const message = min === 0 ? 'must be a non-negative integer' : 'must be a positive integer';
  return v.optional(v.pipe(v.number(message), v.integer(message), v.minValue(min, message)));
}

const PORT = 'must be a port number (1-65535)';
const ENV_NAME = 'must be the name of an environment variable (letters, digits and _)';

const connectionEntries = {
  url: text(),
  host: text(),
  port: v.optional(v.pipe(v.number(PORT), v.integer(PORT), v.minValue(1, PORT), v.maxValue(65535, PORT))),
  user: text(),
  database: text(),
  password_env: v.optional(v.pipe(v.string(STRING), v.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, ENV_NAME))),
  password_file: text(),
};

const templateName = () =>
  v.optional(v.pipe(v.string(STRING), v.check(isValidTemplateName, TEMPLATE_NAME_EXPECTATION)));

const fileSchema = v.object({
  database: v.optional(
    table({ ...connectionEntries, template_name: templateName(), default_environment: text() }),
  ),
  repository: v.optional(
    table({
      path: text(),
      include_patterns: stringList(),
      exclude_patterns: stringList(),
      // Accepted for compatibility with the original Rust DBFast format, which required it.
      type: v.optional(v.unknown()),
    }),
  ),
  environments: v.optional(
    tableOf(
      table({
        include_directories: stringList(),
        exclude_directories: stringList(),
        include_files: stringList(),
        exclude_files: stringList(),
        template_name: templateName(),
        description: text(),
      }),
    ),
  ),
  remotes: v.optional(
    tableOf(
      table({
        ...connectionEntries,
        name: text(),
        environment: text(),
        require_confirmation: flag(),
        allow_destructive: flag(),
        backup_before_deploy: flag(),
      }),
    ),
  ),
  performance: v.optional(
    table({
      max_concurrent_clones: integerAtLeast(1),
      clone_timeout_ms: integerAtLeast(1),
      build_timeout_ms: integerAtLeast(0),
      statement_batch_bytes: integerAtLeast(1),
      clone_strategy: v.optional(v.picklist(['file_copy', 'wal_log'], 'must be "file_copy" or "wal_log"')),
    }),
  ),
  validation: v.optional(
    table({
      required_tables: stringList(),
      required_functions: stringList(),
      test_queries: v.optional(
        v.array(
          v.union(
            [v.string(), table({ query: v.string(STRING), min_expected_results: integerAtLeast(0) })],
            'must be a query string or a table { query = "...", min_expected_results = N }',
          ),
          'must be a list',
        ),
      ),
    }),
  ),
  backups: v.optional(
    table({
      directory: text(),
      retention_days: integerAtLeast(1),
      max_backups: integerAtLeast(1),
      format: v.optional(
        v.picklist(['custom', 'plain', 'directory'], 'must be "custom", "plain" or "directory"'),
      ),
    }),
  ),
});

type FileSettings = v.InferOutput<typeof fileSchema>;
type ConnectionSection = {
  [Key in keyof typeof connectionEntries]?: v.InferOutput<(typeof connectionEntries)[Key]>;
};

// ---- loading ---------------------------------------------------------------------------

/** Search upward from startDir for dbfast.toml. */
export function findConfigFile(startDir: string): string | null {
  for (let dir = path.resolve(startDir); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, CONFIG_FILE_NAME);
    if (statSync(candidate, { throwIfNoEntry: false })?.isFile()) return candidate;
    if (path.dirname(dir) === dir) return null;
  }
}

export async function loadConfig(options: LoadConfigOptions = {}): Promise<DbfastConfig> {
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const env = options.env ?? process.env;
  const configPath =
    options.configPath === undefined
      ? findConfigFile(cwd)
      : requireConfigFile(path.resolve(cwd, options.configPath), options.configPath);
  const projectDir = configPath === null ? cwd : path.dirname(configPath);
  const file = configPath === null ? CONFIG_FILE_NAME : displayPath(configPath, cwd);
  const parsed =
    configPath === null
      ? { settings: {}, warnings: [] }
      : parseConfigText(await readConfigFile(configPath, file), file);
  const stateDir = env.DBFAST_STATE_DIR
    ? path.resolve(cwd, env.DBFAST_STATE_DIR)
    : path.join(projectDir, '.dbfast');
  return {
    configPath,
    projectDir,
    stateDir,
    ...(env.DBFAST_STATE_DIR ? { stateDirFromEnv: true } : {}),
    ...buildSettings(parsed.settings, { projectDir, stateDir, env }),
    warnings: parsed.warnings,
  };
}

function requireConfigFile(absolute: string, asGiven: string): string {
  if (statSync(absolute, { throwIfNoEntry: false })?.isFile()) return absolute;
  throw new DbfastError('CONFIG_NOT_FOUND', `config file not found: ${asGiven}`, { file: asGiven });
}

async function readConfigFile(configPath: string, file: string): Promise<string> {
  try {
    return await readFile(configPath, 'utf8');
  } catch (cause) {
    throw new DbfastError('FILE_UNREADABLE', `cannot read ${CONFIG_FILE_NAME}`, { file, cause });
  }
}

/** A path as users should see it: relative to `cwd` when inside it. */
export function displayPath(absolute: string, cwd = process.cwd()): string {
  const relative = path.relative(cwd, absolute);
  const inside = relative !== '' && relative.split(path.sep)[0] !== '..' && !path.isAbsolute(relative);
  return inside ? relative : absolute;
}

function parseConfigText(
  text: string,
  file: string,
): { settings: FileSettings; warnings: ConfigWarning[] } {
  const raw = parseTomlText(text, file);
  refusePasswords(raw, '', file);
  const normalized = raw.remotes === undefined ? raw : { ...raw, remotes: remotesByName(raw.remotes, file) };
  const result = v.safeParse(fileSchema, normalized);
  if (!result.success) {
    const problems = result.issues.map((issue) => `${issuePath(issue)} ${issue.message}`);
    throw invalid([...new Set(problems)].join('; '), file);
  }
  checkEnvironmentReferences(result.output, file);
  return {
    settings: result.output,
    warnings: [
      ...unknownKeys(normalized, fileSchema as unknown as SchemaShape, '', file),
      ...passwordsInUrls(result.output, file),
    ],
  };
}

/** A password written into a url works (it is never printed), but belongs in password_env. */
function passwordsInUrls(settings: FileSettings, file: string): ConfigWarning[] {
  const urls: [string, string | undefined][] = [
    ['database.url', settings.database?.url],
    ...Object.entries(settings.remotes ?? {}).map(([name, remote]): [string, string | undefined] => [`remotes.${name}.url`, remote.url]),
  ];
  return urls
    .filter(([, url]) => url !== undefined && /^[a-z]+:\/\/[^/@?#]*:[^/@?#]*@|[?&]password=/i.test(url))
    .map(([key]) => ({
      file,
      key,
      message: `${key} contains a password`,
      hint: 'move it to password_env or password_file, so dbfast.toml can be committed',
    }));
}

function parseTomlText(text: string, file: string): Record<string, unknown> {
  try {
    return parseToml(text, { unsafeKeyBehaviour: 'throw' });
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    // The full message quotes the offending lines, which may hold a secret: keep the first line.
    const reason = (error.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
    throw new DbfastError('CONFIG_INVALID', `invalid TOML: ${reason}`, {
      file,
      line: error.line,
      column: error.column,
    });
  }
}

function invalid(message: string, file: string, hint?: string): DbfastError {
  return new DbfastError('CONFIG_INVALID', message, { file, hint });
}

function joinKey(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  return parent === '' ? key : `${parent}.${key}`;
}

function issuePath(issue: v.BaseIssue<unknown>): string {
  return (issue.path ?? []).reduce<string>(
    (at, item) => joinKey(at, typeof item.key === 'number' ? item.key : String(item.key)),
    '',
  );
}

function refusePasswords(value: unknown, at: string, file: string): void {
  const children: [string | number, unknown][] = Array.isArray(value)
    ? [...value.entries()]
    : isTable(value)
      ? Object.entries(value)
      : [];
  for (const [key, child] of children) {
    const keyPath = joinKey(at, key);
    // A table may be called "password" (an environment, say); only a value can be a secret.
    if (typeof key === 'string' && key.toLowerCase() === 'password' && !isTable(child)) {
      const hint = 'use password_env = "NAME_OF_AN_ENV_VAR", password_file = "path/to/file" or ~/.pgpass';
      throw invalid(`${keyPath} is not allowed: passwords do not belong in ${CONFIG_FILE_NAME}`, file, hint);
    }
    refusePasswords(child, keyPath, file);
  }
}

/** `[[remotes]]` with `name = "..."` is the array form of `[remotes.NAME]`. */
function remotesByName(remotes: unknown, file: string): unknown {
  if (!Array.isArray(remotes)) return remotes;
  const indexByName = new Map<string, number>();
  remotes.forEach((remote, index) => {
    const name = isTable(remote) ? remote.name : undefined;
    if (typeof name !== 'string' || name === '') {
      throw invalid(`remotes[${index}] must be a table with a non-empty name`, file);
    }
    const first = indexByName.get(name);
    if (first !== undefined) {
      throw invalid(`remotes[${index}].name "${name}" is already used by remotes[${first}]`, file);
    }
    indexByName.set(name, index);
  });
  return Object.fromEntries([...indexByName].map(([name, index]) => [name, remotes[index]]));
}

function checkEnvironmentReferences(settings: FileSettings, file: string): void {
  const known = Object.keys(settings.environments ?? {});
  if (known.length === 0) return;
  const references: [string, string | undefined][] = [
    ['database.default_environment', settings.database?.default_environment],
    ...Object.entries(settings.remotes ?? {}).map(
      ([name, remote]): [string, string | undefined] => [`remotes.${name}.environment`, remote.environment],
    ),
  ];
  for (const [key, name] of references) {
    if (name !== undefined && !known.includes(name)) {
      const hint = `configured environments: ${known.join(', ')}`;
      throw invalid(`${key} names "${name}", which is not a configured environment`, file, hint);
    }
  }
}

// ---- unknown keys ----------------------------------------------------------------------

/** The parts of a valibot schema that describe where keys may appear. */
interface SchemaShape {
  type: string;
  entries?: Record<string, SchemaShape>;
  wrapped?: SchemaShape;
  value?: SchemaShape;
  item?: SchemaShape;
  options?: SchemaShape[];
  pipe?: SchemaShape[];
}

function unknownKeys(value: unknown, schema: SchemaShape, at: string, file: string): ConfigWarning[] {
  const last = schema.pipe?.at(-1);
  if (last) return unknownKeys(value, last, at, file);
  if (schema.wrapped) return unknownKeys(value, schema.wrapped, at, file);
  if (schema.type === 'union') {
    return (schema.options ?? []).flatMap((option) => unknownKeys(value, option, at, file));
  }
  if (schema.item && Array.isArray(value)) {
    const item = schema.item;
    return value.flatMap((child, index) => unknownKeys(child, item, joinKey(at, index), file));
  }
  if (!isTable(value) || !(schema.entries || schema.value)) return [];
  return Object.entries(value).flatMap(([key, child]) => {
    const keyPath = joinKey(at, key);
    const childSchema = schema.value ?? schema.entries?.[key];
    if (childSchema) return unknownKeys(child, childSchema, keyPath, file);
    const suggestion = closest(key, Object.keys(schema.entries ?? {}));
    const hint = suggestion && `did you mean "${suggestion}"?`;
    return [{ file, key: keyPath, message: `unknown key ${keyPath}`, ...definedOnly({ hint }) }];
  });
}

// ---- from file settings to DbfastConfig ------------------------------------------------

type BuiltSettings = Omit<DbfastConfig, 'configPath' | 'projectDir' | 'stateDir' | 'stateDirFromEnv' | 'warnings'>;

function buildSettings(
  settings: FileSettings,
  context: { projectDir: string; stateDir: string; env: NodeJS.ProcessEnv },
): BuiltSettings {
  const { projectDir, stateDir, env } = context;
  const resolve = (file: string) => resolvePath(projectDir, file);
  const { database, repository, performance, validation, backups } = settings;
  return {
    database: databaseSettings(database ?? {}, resolve, env),
    templateName: database?.template_name ?? defaultTemplateName(projectDir),
    ...definedOnly({ defaultEnvironment: database?.default_environment }),
    repository: {
      path: resolve(repository?.path ?? './db'),
      include: repository?.include_patterns ?? ['**/*.sql'],
      exclude: repository?.exclude_patterns ?? [],
    },
    environments: mapValues(settings.environments ?? {}, (environment) =>
      definedOnly({
        includeDirectories: environment.include_directories,
        excludeDirectories: environment.exclude_directories,
        includeFiles: environment.include_files,
        excludeFiles: environment.exclude_files,
        templateName: environment.template_name,
        description: environment.description,
      }),
    ),
    remotes: mapValues(settings.remotes ?? {}, (remote, name) => ({
      name,
      ...connectionSettings(remote, resolve),
      ...definedOnly({ environment: remote.environment }),
      requireConfirmation: remote.require_confirmation ?? false,
      allowDestructive: remote.allow_destructive ?? false,
      backupBeforeDeploy: remote.backup_before_deploy ?? true,
    })),
    performance: {
      maxConcurrentClones: performance?.max_concurrent_clones ?? 8,
      cloneTimeoutMs: performance?.clone_timeout_ms ?? 60_000,
      buildTimeoutMs: performance?.build_timeout_ms ?? 0,
      statementBatchBytes: performance?.statement_batch_bytes ?? 1_048_576,
      cloneStrategy: performance?.clone_strategy ?? 'file_copy',
    },
    validation: {
      requiredTables: validation?.required_tables ?? [],
      requiredFunctions: validation?.required_functions ?? [],
      testQueries: (validation?.test_queries ?? []).map((item) =>
        typeof item === 'string'
          ? { query: item, minExpectedResults: 1 }
          : { query: item.query, minExpectedResults: item.min_expected_results ?? 1 },
      ),
    },
    backups: {
      directory:
        backups?.directory === undefined ? path.join(stateDir, 'backups') : resolve(backups.directory),
      ...definedOnly({ retentionDays: backups?.retention_days, maxBackups: backups?.max_backups }),
      format: backups?.format ?? 'custom',
    },
  };
}

const CONNECTION_KEYS = ['url', 'host', 'port', 'user', 'database'] as const;

function databaseSettings(
  section: ConnectionSection,
  resolve: (file: string) => string,
  env: NodeJS.ProcessEnv,
): DatabaseSettings | null {
  // The URL replaces where to connect; how to get the password still comes from the file.
  if (env.DBFAST_DATABASE_URL) {
    const { passwordEnv, passwordFile } = connectionSettings(section, resolve);
    return definedOnly({ url: env.DBFAST_DATABASE_URL, passwordEnv, passwordFile });
  }
  const configured = CONNECTION_KEYS.some((key) => section[key] !== undefined);
  // libpq variables reach the server through node-postgres, so PGHOST alone means "use that server".
  if (!configured && !env.PGHOST && !env.PGHOSTADDR) return null;
  return connectionSettings(section, resolve);
}

function connectionSettings(section: ConnectionSection, resolve: (file: string) => string): DatabaseSettings {
  return definedOnly({
    url: section.url,
    host: section.host,
    port: section.port,
    user: section.user,
    database: section.database,
    passwordEnv: section.password_env,
    passwordFile: section.password_file === undefined ? undefined : resolve(section.password_file),
  });
}

function resolvePath(base: string, file: string): string {
  if (file === '~' || file.startsWith('~/')) return path.join(os.homedir(), file.slice(1));
  return path.resolve(base, file);
}

function definedOnly<T extends object>(object: T): T {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as T;
}

function mapValues<In, Out>(
  record: Record<string, In>,
  map: (value: In, key: string) => Out,
): Record<string, Out> {
  return Object.fromEntries(Object.entries(record).map(([key, value]) => [key, map(value, key)]));
}
