/**
 * The real psql client, as the reference dbfast's executor is measured against. psql is installed
 * wherever these tests run: a missing psql is a failure, never a reason to skip.
 */
import { execFile } from 'node:child_process';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { inject } from 'vitest';

const run = promisify(execFile);

const CANDIDATES = ['psql', '/usr/lib/postgresql/15/bin/psql'];

/** The first psql that runs, with its version line; throws a clear error when there is none. */
export async function findPsql(): Promise<{ path: string; version: string }> {
  for (const path of CANDIDATES) {
    try {
      const { stdout } = await run(path, ['--version'], { env: psqlEnvironment() });
      return { path, version: stdout.trim() };
    } catch {
      // try the next one
    }
  }
  throw new Error(
    `psql not found (tried ${CANDIDATES.join(', ')}): the parity tests compare dbfast with the real psql; ` +
      'install the PostgreSQL 15 client (apt-get install postgresql-client-15)',
  );
}

/**
 * The environment without PG* variables (PGPASSWORD, PGOPTIONS, PGDATABASE, ...) that would change
 * what psql does. The client encoding is fixed to UTF8, which node-postgres always uses: psql
 * otherwise derives it from the locale.
 */
function psqlEnvironment(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('PG')));
  return { ...env, PGCLIENTENCODING: 'UTF8' };
}

/**
 * Runs `psql -X -q -v ON_ERROR_STOP=1 -f file` against `database` on the test server, from the
 * file's folder (psql's `\i` is relative to the working directory). Query output is discarded;
 * stdout holds what `\echo` printed. Rejects when psql exits non-zero, with its stderr.
 */
export async function runPsqlFile(psql: string, file: string, database: string): Promise<{ stdout: string; stderr: string }> {
  const args = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(inject('serverPort'))];
  args.push('-U', 'postgres', '-d', database, '-o', '/dev/null', '-f', file);
  return run(psql, args, { env: psqlEnvironment(), cwd: dirname(file), maxBuffer: 64 << 20 });
}
