/**
 * Runs the compiled CLI (`dist/cli/main.js`, built by `npm test`) as a child process, the way
 * users run it, with an environment free of the caller's PG* and DBFAST_* variables.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, inject } from 'vitest';
import pg from 'pg';
import { testClientConfig } from './database.js';
import { tempRepo } from './repo.js';

export const REPO_ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
export const CLI = resolve(REPO_ROOT, 'dist/cli/main.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stderr split into lines, without the trailing empty one. */
  errLines: string[];
}

export interface RunOptions {
  cwd?: string;
  /** Added to the clean environment; `undefined` removes a variable. */
  env?: Record<string, string | undefined>;
  /** A command to run the CLI under, e.g. `['runuser', '-u', 'postgres', '--']`. */
  wrapper?: string[];
}

/** process.env without PG* and DBFAST_* variables, with NO_COLOR=1, plus `extra`. */
export function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  for (const key of Object.keys(env)) if (key.startsWith('PG') || key.startsWith('DBFAST_')) delete env[key];
  delete env.FORCE_COLOR;
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

export function runCli(args: string[], options: RunOptions = {}): Promise<CliResult> {
  return new Promise((done, fail) => {
    const [command = process.execPath, ...argv] = [...(options.wrapper ?? []), process.execPath, CLI, ...args];
    const child = spawn(command, argv, {
      cwd: options.cwd ?? REPO_ROOT,
      env: cliEnv(options.env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr, errLines: lines(stderr) }));
  });
}

export function lines(text: string): string[] {
  return text.split('\n').filter((line, index, all) => line !== '' || index < all.length - 1);
}

const PROGRESS_LINE = /^ {2}\[\d+\/\d+\] /;

/**
 * stderr without the build's progress lines (`  [2/5] db/1_seed/02_users.sql`), which precede an
 * error when stderr is not a terminal.
 */
export function withoutProgress(result: CliResult): string[] {
  return result.errLines.filter((line) => !PROGRESS_LINE.test(line));
}

/** The stack frames Node prints (`    at fn (file:line:col)`). */
export const STACK_FRAME = /^\s+at /m;

export function testServerUrl(port = inject('serverPort'), database = 'postgres'): string {
  return `postgresql://postgres@127.0.0.1:${port}/${database}`;
}

export function uniqueName(prefix = 'cli'): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

export interface CliProject {
  root: string;
  templateName: string;
  /** Runs dbfast in the project folder against the shared test server. */
  run(args: string[], options?: RunOptions): Promise<CliResult>;
  /** Drops the template and its clones, and removes the folder. */
  remove(): Promise<void>;
}

/**
 * A temporary repository with a dbfast.toml naming a unique template, and `files` (paths relative
 * to the project folder, usually under `db/`). Runs go to the shared test server.
 */
export async function cliProject(files: Record<string, string>, extraToml = ''): Promise<CliProject> {
  const templateName = uniqueName();
  const root = await tempRepo({ 'dbfast.toml': `[database]\ntemplate_name = "${templateName}"\n${extraToml}`, ...files });
  const url = testServerUrl();
  return {
    root,
    templateName,
    run: (args, options = {}) =>
      runCli(args, { cwd: options.cwd ?? root, env: { DBFAST_DATABASE_URL: url, ...options.env } }),
    async remove() {
      await dropTemplateAndClones(templateName);
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** cliProject for one test file (call it at the top level): every project it makes is removed after the file's tests. */
export function cliProjects(): typeof cliProject {
  const made: CliProject[] = [];
  afterAll(async () => {
    for (const project of made) await project.remove();
  });
  return async (files, extraToml) => {
    const project = await cliProject(files, extraToml);
    made.push(project);
    return project;
  };
}

/**
 * Drops a template and every database dbfast cloned from it, on the shared test server. Holds the
 * pool's lock while it does, so that a background refill (the CLI's detached one) cannot make a
 * spare after the listing: it either finished before or finds no template after.
 */
export async function dropTemplateAndClones(templateName: string): Promise<void> {
  const client = new pg.Client(testClientConfig());
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [`dbfast:pool:${templateName}`]);
    const { rows } = await client.query<{ datname: string }>(
      `SELECT datname FROM pg_database
        WHERE datname = '${templateName}' OR datname LIKE '${templateName}\\_\\_%'
           OR shobj_description(oid, 'pg_database') LIKE '%"template":"${templateName}"%'
           OR EXISTS (SELECT FROM pg_db_role_setting s, unnest(s.setconfig) c
                       WHERE s.setdatabase = pg_database.oid AND s.setrole = 0 AND c LIKE 'dbfast.metadata=%"template":"${templateName}"%')`,
    );
    for (const { datname } of rows) {
      await client.query(`ALTER DATABASE "${datname}" IS_TEMPLATE false`).catch(() => {});
      await client.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    }
  } finally {
    await client.end();
  }
}
