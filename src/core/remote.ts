/**
 * Remotes: named PostgreSQL servers in dbfast.toml that dbfast deploys to and backs up. Describing
 * them reads no password and connects nowhere; testing one connects and checks what deploy and
 * backup need.
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { type DbfastConfig, displayPath, parseConnectionUrl, type RemoteSettings } from './config/index.js';
import { requireEnvironment } from './environments.js';
import { DbfastError, isDbfastError } from './errors.js';
import { writeFileAtomic } from './files.js';
import { withClient } from './pg/client.js';
import { CONNECT_TIMEOUT_MS, configuredTarget, displayUrl } from './pg/target.js';
import { plural } from './plural.js';
import { quoteIdentifier } from './sql/quote.js';
import { closest } from './suggest.js';

export interface RemoteSummary {
  name: string;
  /** Where it connects; a password written into the configured URL shows as `****`. */
  url: string;
  environment?: string;
  requireConfirmation: boolean;
  allowDestructive: boolean;
  backupBeforeDeploy: boolean;
  /** Where its password comes from: `password_env NAME`, `password_file PATH`, `url`, or `PGPASSWORD or ~/.pgpass`. */
  passwordFrom: string;
}

/** The configured remotes in the order of dbfast.toml. */
export function describeRemotes(config: DbfastConfig, env: NodeJS.ProcessEnv): RemoteSummary[] {
  return Object.values(config.remotes).map((remote) => ({
    name: remote.name,
    url: displayUrl(remote, env),
    ...(remote.environment === undefined ? {} : { environment: remote.environment }),
    requireConfirmation: remote.requireConfirmation,
    allowDestructive: remote.allowDestructive,
    backupBeforeDeploy: remote.backupBeforeDeploy,
    passwordFrom: passwordSource(remote, env),
  }));
}

function passwordSource(remote: RemoteSettings, env: NodeJS.ProcessEnv): string {
  if (remote.passwordEnv) return `password_env ${remote.passwordEnv}${env[remote.passwordEnv] === undefined ? ' (not set)' : ''}`;
  if (remote.passwordFile) return `password_file ${remote.passwordFile}`;
  if (remote.url && parseConnectionUrl(remote.url, `${remote.origin}.url`).password !== undefined) return 'url';
  return 'PGPASSWORD or ~/.pgpass';
}

/** One line of `dbfast remote test`: what was checked, whether it is in place, and what to do when not. */
export interface RemoteCheck {
  check: 'reachable' | 'authentication' | 'database' | 'version' | 'pg_dump' | 'pg_restore' | 'privileges';
  ok: boolean;
  message: string;
  hint?: string;
}

export interface RemoteTestResult {
  name: string;
  url: string;
  /** Everything deploy and backup need is in place. */
  ok: boolean;
  checks: RemoteCheck[];
  serverVersion?: string;
  /** Time to connect and run the first query, in milliseconds. */
  latencyMs?: number;
  databaseSizeBytes?: number;
  /** What deploy or backup would lack: `create databases (or own the database)`, `SELECT on 2 tables`. */
  missingPrivileges: string[];
}

export interface TestRemoteOptions {
  env?: NodeJS.ProcessEnv;
  /** Connection attempts when the server cannot be reached (default 3), with a doubling pause from `retryDelayMs` (default 250). */
  attempts?: number;
  retryDelayMs?: number;
}

/** The remote named `name`, or a usage error listing the configured ones. */
export function remoteNamed(config: DbfastConfig, name: string): RemoteSettings {
  const remote = config.remotes[name];
  if (remote) return remote;
  const names = Object.keys(config.remotes);
  const suggestion = closest(name, names);
  throw new DbfastError('USAGE', `unknown remote "${name}"`, {
    hint: names.length === 0
      ? 'no remotes are configured: add a [remotes.NAME] table to dbfast.toml'
      : suggestion ? `did you mean "${suggestion}"? available: ${names.join(', ')}` : `available: ${names.join(', ')}`,
  });
}

/**
 * Connects to a remote and checks what deploy and backup need: the server answers, accepts the
 * credentials and has the database; its version can take a dump of the local server's; pg_dump and
 * pg_restore fit it; the user may create databases (or owns the database) and read every table.
 */
export async function testRemote(config: DbfastConfig, name: string, options: TestRemoteOptions = {}): Promise<RemoteTestResult> {
  const env = options.env ?? process.env;
  const remote = remoteNamed(config, name);
  const target = await configuredTarget(remote, config, env);
  const { host, port } = target.clientConfig();
  const where = `${host}:${port}`;
  const result: RemoteTestResult = { name, url: displayUrl(remote, env), ok: false, checks: [], missingPrivileges: [] };
  const checks = result.checks;

  const started = performance.now();
  let facts: RemoteFacts;
  try {
    facts = await withRetries(() => withClient(target, readFacts), options);
  } catch (error) {
    checks.push(...connectionFailure(error, remote, where, target.maintenanceDatabase));
    return result;
  }
  result.latencyMs = Math.round(performance.now() - started);
  result.serverVersion = facts.version;
  result.databaseSizeBytes = Number(facts.size);
  checks.push(
    { check: 'reachable', ok: true, message: `${where} answered in ${result.latencyMs} ms` },
    { check: 'authentication', ok: true, message: `logged in as ${facts.user}` },
    { check: 'database', ok: true, message: `database "${facts.database}" exists` },
  );

  const remoteMajor = Math.floor(facts.versionNum / 10_000);
  const local = await localServerMajor(config, env);
  checks.push(versionCheck(facts.version, remoteMajor, local));
  const toolMajor = Math.max(remoteMajor, typeof local === 'number' ? local : 0);
  for (const tool of ['pg_dump', 'pg_restore'] as const) checks.push(await toolCheck(tool, toolMajor, config, env));

  if (!facts.superuser && !facts.createdb && !facts.owner) result.missingPrivileges.push('create databases (or own the database)');
  const unreadable = Number(facts.unreadable);
  if (unreadable > 0) result.missingPrivileges.push(`SELECT on ${plural(unreadable, 'table')} (${facts.unreadableExamples}${unreadable > 3 ? ', ...' : ''})`);
  checks.push(
    result.missingPrivileges.length === 0
      ? { check: 'privileges', ok: true, message: privilegeSummary(facts) }
      : {
          check: 'privileges',
          ok: false,
          message: `${facts.user} lacks ${result.missingPrivileges.join(' and ')}`,
          hint: `as a superuser: ${grantHint(result.missingPrivileges, facts)}`,
        },
  );
  result.ok = checks.every((check) => check.ok);
  return result;
}

/** One line of `dbfast status --check-remotes`. */
export interface RemoteReachability {
  name: string;
  url: string;
  reachable: boolean;
  version?: string;
  /** Time to connect and ask the version, in milliseconds. */
  latencyMs?: number;
  /** Why it could not be asked; never a password. */
  error?: string;
  hint?: string;
  /** The last deploy recorded on the remote (dbfast.deployments), and whether its files are the environment's current ones. */
  deployed?: { id: string; environment: string; fingerprint: string; at: string; current?: boolean };
}

/**
 * Asks every remote for its version (and its last deploy) at once, one attempt each: a quick look,
 * where `testRemote` is the full check. With `fingerprintOf`, a deploy is said to be current or not.
 */
export async function probeRemotes(
  config: DbfastConfig,
  env: NodeJS.ProcessEnv = process.env,
  fingerprintOf?: (environment: string) => Promise<string>,
): Promise<RemoteReachability[]> {
  return Promise.all(
    Object.values(config.remotes).map(async (remote): Promise<RemoteReachability> => {
      const base = { name: remote.name, url: displayUrl(remote, env) };
      let where = base.url;
      let database = '';
      try {
        const target = await configuredTarget(remote, config, env);
        const { host, port } = target.clientConfig();
        where = `${host}:${port}`;
        database = target.maintenanceDatabase;
        const started = performance.now();
        const [version, deployed] = await withClient(target, async (client) => [
          (await client.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v,
          await lastDeploy(client),
        ] as const);
        const latencyMs = Math.round(performance.now() - started);
        if (deployed && fingerprintOf) deployed.current = deployed.fingerprint === (await fingerprintOf(deployed.environment).catch(() => undefined));
        return { ...base, reachable: true, version, latencyMs, ...(deployed ? { deployed } : {}) };
      } catch (error) {
        if (!isDbfastError(error)) throw error;
        const failure = ['AUTH_FAILED', 'DATABASE_NOT_FOUND', 'SERVER_UNREACHABLE'].includes(error.code)
          ? connectionFailure(error, remote, where, database).find((check) => !check.ok)
          : { message: error.message, hint: error.hint };
        return { ...base, reachable: false, error: failure?.message ?? error.message, ...(failure?.hint ? { hint: failure.hint } : {}) };
      }
    }),
  );
}

async function lastDeploy(client: pg.Client): Promise<RemoteReachability['deployed']> {
  const { rows } = await client.query<{ found: string | null }>("SELECT to_regclass('dbfast.deployments')::text AS found");
  if (rows[0]!.found === null) return undefined;
  const last = await client.query<NonNullable<RemoteReachability['deployed']>>(
    "SELECT id, environment, fingerprint, finished_at::text AS at FROM dbfast.deployments WHERE outcome = 'succeeded' ORDER BY started_at DESC LIMIT 1",
  );
  return last.rows[0];
}

interface RemoteFacts {
  user: string;
  database: string;
  version: string;
  versionNum: number;
  superuser: boolean;
  createdb: boolean;
  owner: boolean;
  size: string;
  unreadable: string;
  unreadableExamples: string | null;
}

// Sequences count with tables: pg_dump reads both. Catalog and TOAST schemas are not the user's data.
const FACTS_SQL = `
WITH unreadable AS (
  SELECT format('%I.%I', n.nspname, c.relname) AS name
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'm', 'S')
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
    AND NOT has_table_privilege(c.oid, 'SELECT')
  ORDER BY 1
)
SELECT current_user AS user, current_database() AS database,
       current_setting('server_version') AS version, current_setting('server_version_num')::int AS "versionNum",
       r.rolsuper AS superuser, r.rolcreatedb AS createdb, pg_has_role(d.datdba, 'MEMBER') AS owner,
       pg_database_size(d.oid)::text AS size,
       (SELECT count(*) FROM unreadable)::text AS unreadable,
       (SELECT string_agg(name, ', ') FROM (SELECT name FROM unreadable LIMIT 3) first) AS "unreadableExamples"
FROM pg_roles r, pg_database d
WHERE r.rolname = current_user AND d.datname = current_database()`;

async function readFacts(client: pg.Client): Promise<RemoteFacts> {
  return (await client.query<RemoteFacts>(FACTS_SQL)).rows[0]!;
}

/** Retries only what may pass on its own (a server starting, a network hiccup), never a refused login. */
async function withRetries<T>(work: () => Promise<T>, options: TestRemoteOptions): Promise<T> {
  const attempts = options.attempts ?? 3;
  let delay = options.retryDelayMs ?? 250;
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      const cause = error instanceof Error ? (error.cause as { code?: string; message?: string } | undefined) : undefined;
      const permanent = !isDbfastError(error, 'SERVER_UNREACHABLE') || cause?.code === 'ENOTFOUND' || isTlsFailure(cause);
      if (attempt >= attempts || permanent) throw error;
      await sleep(delay);
      delay *= 2;
    }
  }
}

function connectionFailure(error: unknown, remote: RemoteSettings, where: string, database: string): RemoteCheck[] {
  if (!isDbfastError(error)) throw error;
  const settings = `[${remote.origin}]`;
  const cause = error.cause as { code?: string; message?: string } | undefined;
  switch (error.code) {
    case 'AUTH_FAILED':
      return [
        { check: 'reachable', ok: true, message: `${where} answered` },
        {
          check: 'authentication',
          ok: false,
          message: authMessage(error.message, cause),
          // 28000: no pg_hba.conf line lets this user in from here; no password would help.
          hint: cause?.code === '28000' ? `the server's pg_hba.conf refuses this user, database or address (or needs another sslmode in ${settings})` : passwordHint(remote),
        },
      ];
    case 'DATABASE_NOT_FOUND':
      return [
        { check: 'reachable', ok: true, message: `${where} answered` },
        { check: 'authentication', ok: true, message: 'credentials accepted' },
        { check: 'database', ok: false, message: `database "${database}" does not exist on ${where}`, hint: `create it, or name another database in ${settings}` },
      ];
    case 'SERVER_UNREACHABLE':
      return [{ check: 'reachable', ok: false, ...unreachable(cause, where, remote, settings) }];
    default:
      throw error;
  }
}

/** A TLS handshake that failed (a certificate not trusted or not naming the host, or no TLS on the server): trying again cannot help. */
function isTlsFailure(cause: { code?: string; message?: string } | undefined): boolean {
  return /CERT|SSL|TLS/.test(cause?.code ?? '') || /\bSSL\b|certificate/i.test(cause?.message ?? '');
}

function unreachable(cause: { code?: string; message?: string } | undefined, where: string, remote: RemoteSettings, settings: string) {
  if (isTlsFailure(cause)) {
    return { message: `TLS with ${where} failed: ${cause?.message}`, hint: `check sslmode and sslrootcert in ${settings}` };
  }
  switch (cause?.code) {
    case 'ECONNREFUSED':
      return { message: `connection refused at ${where}`, hint: `is the server running? check host and port in ${settings}` };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { message: `host ${where.replace(/:\d+$/, '')} not found`, hint: `check the host in ${settings}` };
  }
  if (/timeout/i.test(cause?.message ?? '')) {
    return {
      message: `no answer from ${where} within ${remote.connectTimeoutMs ?? CONNECT_TIMEOUT_MS} ms`,
      hint: `is a firewall dropping the connection? a slow server needs a larger connect_timeout_ms in ${settings}`,
    };
  }
  return { message: `cannot reach ${where}: ${cause?.message ?? 'unknown error'}`, hint: `check ${settings}` };
}

/** PostgreSQL's own words for a refused login (never containing the password), else dbfast's. */
function authMessage(fallback: string, cause: { code?: string; message?: string } | undefined): string {
  return cause?.code === '28P01' || cause?.code === '28000' ? (cause.message ?? fallback) : fallback;
}

function passwordHint(remote: RemoteSettings): string {
  if (remote.passwordEnv) return `check $${remote.passwordEnv}`;
  if (remote.passwordFile) return `check the password in ${remote.passwordFile}`;
  return `set password_env or password_file in [${remote.origin}], PGPASSWORD, or a ~/.pgpass entry`;
}

/** The local server's major version: the embedded server's programs, or the configured server itself. */
async function localServerMajor(config: DbfastConfig, env: NodeJS.ProcessEnv): Promise<number | string> {
  try {
    if (config.database === null) {
      const { findServerPrograms } = await import('./tools.js');
      return (await findServerPrograms(env, config.tools.pgBinDir)).postgres.major;
    }
    const local = await configuredTarget(config.database, config, env);
    const version = await withClient(local, async (client) => (await client.query<{ v: number }>("SELECT current_setting('server_version_num')::int AS v")).rows[0]!.v);
    return Math.floor(version / 10_000);
  } catch (error) {
    return (error as Error).message;
  }
}

function versionCheck(version: string, remoteMajor: number, local: number | string): RemoteCheck {
  if (typeof local === 'string') {
    return { check: 'version', ok: false, message: `PostgreSQL ${version}; the local server's version is unknown: ${local}`, hint: 'dbfast server status shows the local server' };
  }
  if (remoteMajor >= local) return { check: 'version', ok: true, message: `PostgreSQL ${version}, takes dumps of the local PostgreSQL ${local}` };
  return {
    check: 'version',
    ok: false,
    message: `PostgreSQL ${version} is older than the local PostgreSQL ${local}: a dump of the local template may not restore there`,
    hint: `build templates with PostgreSQL ${remoteMajor} locally ([tools] pg_bin_dir or DBFAST_PG_BIN), or upgrade the remote`,
  };
}

async function toolCheck(name: 'pg_dump' | 'pg_restore', minMajor: number, config: DbfastConfig, env: NodeJS.ProcessEnv): Promise<RemoteCheck> {
  const { findProgram } = await import('./tools.js');
  try {
    const program = await findProgram(name, { minMajor, env, ...(config.tools.pgBinDir ? { binDir: config.tools.pgBinDir } : {}) });
    return { check: name, ok: true, message: `${program.path} (${program.version})` };
  } catch (error) {
    if (!isDbfastError(error)) throw error;
    return { check: name, ok: false, message: error.message, ...(error.hint ? { hint: error.hint } : {}) };
  }
}

function privilegeSummary(facts: RemoteFacts): string {
  const create = facts.superuser ? 'superuser' : facts.createdb ? 'may create databases' : 'owns the database';
  return `${facts.user}: ${create}, reads every table`;
}

function grantHint(missing: string[], facts: RemoteFacts): string {
  const grants = [];
  if (missing.some((item) => item.startsWith('create'))) grants.push(`ALTER ROLE ${quoteIdent(facts.user)} CREATEDB`);
  if (missing.some((item) => item.startsWith('SELECT'))) grants.push(`GRANT pg_read_all_data TO ${quoteIdent(facts.user)}`);
  return grants.join('; ');
}

/** A plain role name as it is, else quoted: the hint is for people to read and paste. */
function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : quoteIdentifier(name);
}

/** What `dbfast remote add` writes: the keys a new remote needs, and its safety settings where they differ from the defaults. */
export interface NewRemote {
  name: string;
  url: string;
  environment: string;
  passwordEnv?: string;
  allowDestructive?: boolean;
  backupBeforeDeploy?: boolean;
  requireConfirmation?: boolean;
}

const REMOTE_NAME = /^[A-Za-z0-9_-]+$/;
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Adds `[remotes.NAME]` to dbfast.toml (or a `[[remotes]]` entry, when the file uses that form),
 * keeping every other byte. A remote of that name is replaced only with `force`. Returns warnings
 * for the caller to show (a password written into the URL).
 */
export async function addRemote(config: DbfastConfig, remote: NewRemote, options: { force?: boolean } = {}): Promise<{ replaced: boolean; warnings: string[] }> {
  const file = configFile(config);
  if (!REMOTE_NAME.test(remote.name)) {
    throw new DbfastError('USAGE', `remote name "${remote.name}" may hold only letters, digits, _ and -`);
  }
  requireEnvironment(config, remote.environment);
  if (remote.passwordEnv !== undefined && !VARIABLE_NAME.test(remote.passwordEnv)) {
    throw new DbfastError('USAGE', '--password-env must be the name of an environment variable (letters, digits and _)');
  }
  const carriesPassword = parseConnectionUrl(remote.url, '--url').password !== undefined;
  const replaced = Object.hasOwn(config.remotes, remote.name);
  if (replaced && !options.force) {
    throw new DbfastError('USAGE', `remote "${remote.name}" already exists`, { hint: 'dbfast remote add --force replaces it' });
  }
  const entries = {
    url: remote.url,
    environment: remote.environment,
    password_env: remote.passwordEnv,
    allow_destructive: remote.allowDestructive || undefined,
    backup_before_deploy: remote.backupBeforeDeploy === false ? false : undefined,
    require_confirmation: remote.requireConfirmation || undefined,
  };
  await editConfig(file, ({ withRemoteAdded, withRemoteRemoved }, text) =>
    withRemoteAdded(replaced ? withRemoteRemoved(text, remote.name, file.label) : text, remote.name, entries, file.label),
  );
  const warnings = carriesPassword
    ? [`remotes.${remote.name}.url contains a password, now written in ${file.label}: prefer --password-env (or password_file), so the file can be committed`]
    : [];
  return { replaced, warnings };
}

/** Removes exactly the remote's table from dbfast.toml, nothing else. */
export async function removeRemote(config: DbfastConfig, name: string): Promise<void> {
  const file = configFile(config);
  remoteNamed(config, name);
  await editConfig(file, ({ withRemoteRemoved }, text) => withRemoteRemoved(text, name, file.label));
}

function configFile(config: DbfastConfig): { path: string; label: string } {
  if (config.configPath === null) {
    throw new DbfastError('CONFIG_NOT_FOUND', 'no dbfast.toml found here or above', { hint: 'dbfast init writes one' });
  }
  return { path: config.configPath, label: displayPath(config.configPath, config.projectDir) };
}

type Editor = typeof import('./config/edit.js');

/**
 * Reads the file as it is now, edits it, and replaces it atomically with the same permissions
 * (through a symbolic link, the file it points to). The editor's TOML parser loads only here.
 */
async function editConfig(file: { path: string; label: string }, edit: (editor: Editor, text: string) => string): Promise<void> {
  const editor = await import('./config/edit.js');
  const target = await realpath(file.path);
  const text = await readFile(target, 'utf8');
  const edited = edit(editor, text);
  await writeFileAtomic(target, edited, { mode: (await stat(target)).mode & 0o7777 });
}
