/** Errors and warnings that carry where they came from: SQLSTATE, the missing database, the outside database, the template's name. */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliProjects, runCli, testServerUrl, uniqueName, withoutProgress } from '../helpers/cli.js';
import { query } from '../helpers/database.js';
import { tempRepo } from '../helpers/repo.js';

const tracked = cliProjects();
async function project(files: Record<string, string>) {
  return tracked(files);
}

describe('--json errors', () => {
  it('carry the SQLSTATE, constraint, table and location of a failed statement', async () => {
    const { run } = await project({
      'db/0_schema/01.sql': 'CREATE TABLE users (id int CONSTRAINT users_id_key PRIMARY KEY);',
      'db/1_seed/01.sql': 'INSERT INTO users VALUES (1);\nINSERT INTO users VALUES (1);\n',
    });
    const result = await run(['seed', '--json']);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toEqual({
      error: {
        code: 'SQL_FAILED',
        message: 'duplicate key value violates unique constraint "users_id_key"',
        file: 'db/1_seed/01.sql',
        line: 2,
        column: 1,
        detail: 'DETAIL: Key (id)=(1) already exists.',
        sqlState: '23505',
        schema: 'public',
        table: 'users',
        constraint: 'users_id_key',
      },
    });
  });

  it('of configuration have the code and exit 2', async () => {
    const root = await tempRepo({ 'dbfast.toml': '[performance]\nmax_concurrent_clones = 0\n', 'db/a.sql': 'SELECT 1;' });
    const result = await runCli(['seed', '--json'], { cwd: root, env: { DBFAST_DATABASE_URL: testServerUrl() } });
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stdout).error).toMatchObject({ code: 'CONFIG_INVALID', file: 'dbfast.toml' });
  });
});

describe('a missing database', () => {
  it('is named, not reported as an unreachable server (exit 1)', async () => {
    const root = await tempRepo({ 'db/a.sql': 'SELECT 1;' });
    const result = await runCli(['seed'], { cwd: root, env: { DBFAST_DATABASE_URL: testServerUrl(undefined, 'no_such_db') } });
    expect(result.code).toBe(1);
    expect(result.errLines[0]).toMatch(/^error: database "no_such_db" does not exist on postgres@127\.0\.0\.1:\d+$/);
    expect(result.errLines[1]).toBe('  hint: check DBFAST_DATABASE_URL: it names the database dbfast connects to');
  });
});

describe('CREATE DATABASE in a file', () => {
  it('builds, and warns with the location that the database stays on the server, outside the template', async () => {
    const outside = uniqueName('outside');
    const { run } = await project({ 'db/0_schema/01.sql': `SELECT 1;\nCREATE DATABASE ${outside};\n` });
    try {
      const result = await run(['build']);
      expect(result.code).toBe(0);
      expect(withoutProgress(result)[0]).toBe(
        'warning: db/0_schema/01.sql:2:1: CREATE DATABASE makes a database on the server, outside the one being built: ' +
          'it stays there and is not in any clone (create it from a setup script of your own, not from the SQL repository)',
      );
    } finally {
      await query('postgres', `DROP DATABASE IF EXISTS ${outside}`);
    }
  });
});

describe('seed -o', () => {
  it("naming dbfast's own template says so", async () => {
    const { run, templateName } = await project({ 'db/a.sql': 'SELECT 1;' });
    expect((await run(['build'])).code).toBe(0);
    const result = await run(['seed', '-o', templateName]);
    expect(result.code).toBe(2);
    expect(result.errLines).toEqual([`error: database "${templateName}" is a dbfast template, not a clone`, '  hint: choose another name with --output']);
  });
});

describe('without dbfast.toml or db/', () => {
  it('seed says to run dbfast init, exit 2, and starts no server', async () => {
    const root = await tempRepo({ 'README.md': 'nothing here' });
    const result = await runCli(['seed'], { cwd: root, env: { DBFAST_DATABASE_URL: undefined } });
    expect(result.code).toBe(2);
    expect(result.errLines).toEqual(['error: no dbfast.toml here or in any parent folder, and no db/ folder', '  hint: run dbfast init']);
    expect(existsSync(join(root, '.dbfast', 'server'))).toBe(false);
  });
});

describe('status of a checkout whose template another checkout built', () => {
  it('says the template was built from other content, when and where', async () => {
    const first = await project({ 'db/a.sql': 'SELECT 1;' });
    expect((await first.run(['build'])).code).toBe(0);
    const second = await tempRepo({ 'dbfast.toml': `[database]\ntemplate_name = "${first.templateName}"\n`, 'db/a.sql': 'SELECT 2;' });
    const built = await runCli(['build', '--json'], { cwd: second, env: { DBFAST_DATABASE_URL: testServerUrl() } });
    const { fingerprint, builtAt } = JSON.parse(built.stdout);
    const status = await first.run(['status']);
    expect(`${status.stdout}${status.stderr}`).toContain(
      `the template was built from other content: fingerprint ${fingerprint.slice(0, 12)}, built at ${builtAt} by ${hostname()}:${second}`,
    );
  });
});
