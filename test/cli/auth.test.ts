import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lines, runCli, STACK_FRAME, uniqueName } from '../helpers/cli.js';
import { tempRepo } from '../helpers/repo.js';
import { type ScramServer, startScramServer } from '../helpers/scram-server.js';

const sql = { 'db/0_schema/01_tables.sql': 'CREATE TABLE items (id int);' };
const PASSWORD_HINT = '  hint: set password_env or password_file in dbfast.toml, PGPASSWORD, or a ~/.pgpass entry';

const temporary: string[] = [];
afterAll(async () => {
  for (const dir of temporary) await rm(dir, { recursive: true, force: true });
});

async function repo(toml: string) {
  const root = await tempRepo({ 'dbfast.toml': `[database]\ntemplate_name = "${uniqueName()}"\n${toml}`, ...sql });
  temporary.push(root);
  return root;
}

describe('an unreachable server', () => {
  it('is one line and a hint, exit 1, no stack trace', async () => {
    const root = await repo('');
    const result = await runCli(['seed'], { cwd: root, env: { DBFAST_DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/postgres' } });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.errLines).toEqual([
      'error: cannot reach PostgreSQL at postgres@127.0.0.1:1 (ECONNREFUSED)',
      '  hint: is the server running? check DBFAST_DATABASE_URL',
    ]);
  });

  it('does not print the password of a URL', async () => {
    const root = await repo('');
    const url = 'postgresql://postgres:url-secret@127.0.0.1:1/postgres';
    const result = await runCli(['--verbose', 'seed'], { cwd: root, env: { DBFAST_DATABASE_URL: url } });
    expect(result.code).toBe(1);
    expect(result.errLines[0]).toBe('error: cannot reach PostgreSQL at postgres@127.0.0.1:1 (ECONNREFUSED)');
    expect(result.stdout + result.stderr).not.toContain('url-secret');
  });
});

describe('a server that asks for a password', () => {
  let server: ScramServer;
  let url: string;
  beforeAll(async () => {
    server = await startScramServer('right-pass');
    url = `postgresql://postgres@127.0.0.1:${server.port}/postgres`;
  });
  afterAll(async () => {
    await server?.stop();
  });

  const expectSeeded = (result: { code: number | null; stdout: string }) => {
    expect(result.code).toBe(0);
    expect(lines(result.stdout)).toHaveLength(1);
    expect(result.stdout).toMatch(new RegExp(`^postgresql://postgres@127\\.0\\.0\\.1:${server.port}/cli_[0-9a-f]{8}_[0-9a-f]{8}\\n$`));
    expect(result.stdout).not.toContain('right-pass');
  };

  it('a wrong PGPASSWORD fails with exit 1, "authentication failed", and is never printed', async () => {
    const root = await repo('');
    for (const verbose of [[], ['--verbose']]) {
      const result = await runCli([...verbose, 'seed'], { cwd: root, env: { DBFAST_DATABASE_URL: url, PGPASSWORD: 'wrong-pass' } });
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.errLines[0]).toBe(`error: authentication failed for postgres@127.0.0.1:${server.port}/postgres`);
      expect(result.stderr).toContain('authentication failed');
      expect(result.stdout + result.stderr).not.toContain('wrong-pass');
      if (verbose.length === 0) expect(result.errLines).toEqual([result.errLines[0], PASSWORD_HINT]);
    }
  });

  it('the right PGPASSWORD works', async () => {
    const root = await repo('');
    const result = await runCli(['seed'], { cwd: root, env: { DBFAST_DATABASE_URL: url, PGPASSWORD: 'right-pass' } });
    expectSeeded(result);
    expect(result.stderr).not.toContain('right-pass');
  });

  it('password_env in dbfast.toml names the variable with the password', async () => {
    const root = await repo(`url = "${url}"\npassword_env = "MY_PW"\n`);
    const result = await runCli(['seed'], { cwd: root, env: { MY_PW: 'right-pass' } });
    expectSeeded(result);
    expect(result.stderr).not.toContain('right-pass');

    const wrong = await runCli(['seed'], { cwd: root, env: { MY_PW: 'wrong-pass' } });
    expect(wrong.code).toBe(1);
    expect(wrong.errLines[0]).toBe(`error: authentication failed for postgres@127.0.0.1:${server.port}/postgres`);
    expect(wrong.stdout + wrong.stderr).not.toContain('wrong-pass');
  });

  it('password_env naming an unset variable exits 2 and says which', async () => {
    const root = await repo(`url = "${url}"\npassword_env = "MY_PW"\n`);
    const result = await runCli(['seed'], { cwd: root });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.errLines[0]).toBe('error: dbfast.toml: database.password_env names MY_PW, which is not set');
    expect(result.stderr).not.toMatch(STACK_FRAME);
  });

  it('no password at all fails with exit 1 and the hint about password_env, PGPASSWORD and .pgpass', async () => {
    const root = await repo('');
    // An empty HOME: no ~/.pgpass to fall back on.
    const home = await mkdtemp(join(tmpdir(), 'dbfast-home-'));
    temporary.push(home);
    const result = await runCli(['seed'], { cwd: root, env: { DBFAST_DATABASE_URL: url, HOME: home } });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.errLines).toEqual([
      `error: the server asks for a password for postgres@127.0.0.1:${server.port}/postgres and none is configured`,
      PASSWORD_HINT,
    ]);
  });

  it('~/.pgpass supplies the password', async () => {
    const root = await repo('');
    const home = await mkdtemp(join(tmpdir(), 'dbfast-home-'));
    temporary.push(home);
    await writeFile(join(home, '.pgpass'), `127.0.0.1:${server.port}:*:postgres:right-pass\n`);
    await chmod(join(home, '.pgpass'), 0o600);
    const result = await runCli(['seed'], { cwd: root, env: { DBFAST_DATABASE_URL: url, HOME: home } });
    expectSeeded(result);
    expect(result.stderr).not.toContain('right-pass');
    expect(result.stderr).not.toContain('Deprecation');
  });

  it('DBFAST_DATABASE_URL keeps password_env from dbfast.toml', async () => {
    const root = await repo('password_env = "MY_PW"\n');
    const result = await runCli(['seed'], { cwd: root, env: { DBFAST_DATABASE_URL: url, MY_PW: 'right-pass' } });
    expectSeeded(result);
    const unset = await runCli(['seed'], { cwd: root, env: { DBFAST_DATABASE_URL: url } });
    expect(unset.code).toBe(2);
    expect(unset.errLines[0]).toBe('error: dbfast.toml: database.password_env names MY_PW, which is not set');
  });

  it('uses a ?password= URL parameter and never prints it', async () => {
    const root = await repo('');
    const result = await runCli(['seed'], { cwd: root, env: { DBFAST_DATABASE_URL: `${url}?password=right-pass` } });
    expectSeeded(result);
    expect(result.stdout + result.stderr).not.toContain('right-pass');
  });

  it('warns about a password written into url in dbfast.toml, and never prints it', async () => {
    const root = await repo(`url = "${url.replace('postgres@', 'postgres:right-pass@')}"\n`);
    const result = await runCli(['seed'], { cwd: root });
    expectSeeded(result);
    expect(result.stderr).toContain('warning: dbfast.toml: database.url contains a password');
    expect(result.stdout + result.stderr).not.toContain('right-pass');
  });
});
