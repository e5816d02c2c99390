import { chmod, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, runCli, STACK_FRAME, testServerUrl } from '../helpers/cli.js';
import { tempRepo } from '../helpers/repo.js';
import { type ScramServer, startScramServer } from '../helpers/scram-server.js';

const PASSWORD = 'hunter2-do-not-print';

const TOML = `# comments stay where they are
[environments.production]
[environments.staging]

[remotes.prod]
url = "postgresql://deploy:${PASSWORD}@db.example.com:6543/app?sslmode=require"
environment = "production"

[remotes.staging]
host = "staging.example.com"
user = "ci"
password_env = "STAGING_PW"
environment = "staging"
allow_destructive = true
backup_before_deploy = false
`;

const folders: string[] = [];
afterAll(async () => {
  for (const folder of folders) await rm(folder, { recursive: true, force: true });
});

async function listIn(toml: string, args: string[] = [], env: Record<string, string> = {}) {
  const cwd = await tempRepo({ 'dbfast.toml': toml, 'db/0_schema/01.sql': 'SELECT 1;' });
  folders.push(cwd);
  return runCli(['remote', 'list', ...args], { cwd, env });
}

describe('dbfast remote list', () => {
  it('prints one line per remote: name, masked URL, environment and safety settings', async () => {
    const result = await listIn(TOML);
    expect(result.code).toBe(0);
    expect(result.stdout.split('\n')).toEqual([
      'prod\tpostgresql://deploy:****@db.example.com:6543/app?sslmode=require\tproduction\tnot destructive, backup first, confirmation required',
      'staging\tpostgresql://ci@staging.example.com:5432/postgres\tstaging\tdestructive allowed, no backup, no confirmation',
      '',
    ]);
  });

  it('--verbose adds where each password comes from, never the password', async () => {
    const result = await listIn(TOML, ['--verbose'], { STAGING_PW: PASSWORD });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('prod\t');
    expect(result.stdout).toContain('\n  password from url\n');
    expect(result.stdout).toContain('\n  password from password_env STAGING_PW\n');
    expect(result.stdout + result.stderr).not.toContain(PASSWORD);
  });

  it('--json prints the remotes as data, with the password masked', async () => {
    const result = await listIn(TOML, ['--json']);
    expect(result.code).toBe(0);
    const remotes = JSON.parse(result.stdout) as { name: string; url: string; requireConfirmation: boolean }[];
    expect(remotes.map(({ name, url, requireConfirmation }) => [name, url, requireConfirmation])).toEqual([
      ['prod', 'postgresql://deploy:****@db.example.com:6543/app?sslmode=require', true],
      ['staging', 'postgresql://ci@staging.example.com:5432/postgres', false],
    ]);
    expect(result.stdout + result.stderr).not.toContain(PASSWORD);
  });

  it('says so when no remote is configured', async () => {
    const result = await listIn('');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('');
    expect(result.errLines).toEqual(['no remotes configured: add one with [remotes.NAME] in dbfast.toml']);
  });

  it('an invalid remote URL exits 2 naming the key, without the password or a stack trace', async () => {
    const result = await listIn(`[remotes.prod]\nurl = "mysql://deploy:${PASSWORD}@db.example.com/app"\n`);
    expect(result.code).toBe(2);
    expect(result.errLines[0]).toBe('error: dbfast.toml: remotes.prod.url must start with postgresql://, not mysql://');
    expect(result.stdout + result.stderr).not.toContain(PASSWORD);
    expect(result.stderr).not.toMatch(STACK_FRAME);
  });
});

describe('dbfast remote test', () => {
  // A second real server that asks for a password, as a remote does.
  let remote: ScramServer;
  beforeAll(async () => {
    remote = await startScramServer(PASSWORD);
  }, 60_000);
  afterAll(() => remote?.stop());

  async function testIn(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
    const toml = `[remotes.staging]\nurl = "postgresql://postgres@127.0.0.1:${remote.port}/postgres"\npassword_env = "REMOTE_PW"\n`;
    const cwd = await tempRepo({ 'dbfast.toml': toml, 'db/0_schema/01.sql': 'SELECT 1;' });
    folders.push(cwd);
    return runCli(['remote', ...args], { cwd, env });
  }

  it('prints one line per check and exits 0 when everything deploy and backup need is in place', async () => {
    const result = await testIn(['test', 'staging'], { REMOTE_PW: PASSWORD });
    expect(result.code).toBe(0);
    const out = result.stdout.split('\n');
    expect(out[0]).toBe(`staging\tpostgresql://postgres@127.0.0.1:${remote.port}/postgres`);
    expect(out.slice(1, 8).map((line) => line.slice(0, 19))).toEqual([
      '  ✓ reachable      ',
      '  ✓ authentication ',
      '  ✓ database       ',
      '  ✓ version        ',
      '  ✓ pg_dump        ',
      '  ✓ pg_restore     ',
      '  ✓ privileges     ',
    ]);
    expect(out[8]).toMatch(/^ {4}size {11}\d/);
    expect(out[9]).toBe('ready for deploy and backup');
  });

  it('a wrong password exits 1 with PostgreSQL\'s words and a hint naming the variable', async () => {
    const result = await testIn(['check', 'staging'], { REMOTE_PW: 'not-the-password-5d2' });
    expect(result.code).toBe(1);
    expect(result.stdout.split('\n')).toEqual([
      `staging\tpostgresql://postgres@127.0.0.1:${remote.port}/postgres`,
      `  ✓ reachable      127.0.0.1:${remote.port} answered`,
      '  ✗ authentication password authentication failed for user "postgres"',
      '      hint: check $REMOTE_PW',
      'not ready: 1 problem',
      '',
    ]);
    expect(result.stdout + result.stderr).not.toContain('not-the-password-5d2');
  });

  it('--json prints the checks as data, and exits as the checks say', async () => {
    const good = await testIn(['test', 'staging', '--json'], { REMOTE_PW: PASSWORD });
    expect(good.code).toBe(0);
    expect(JSON.parse(good.stdout)).toMatchObject({ name: 'staging', ok: true, missingPrivileges: [] });
    const bad = await testIn(['test', 'staging', '--json'], { REMOTE_PW: 'wrong' });
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, checks: [{ check: 'reachable', ok: true }, { check: 'authentication', ok: false }] });
  });

  it('takes the password from password_file or from ~/.pgpass (PGPASSFILE), as libpq does', async () => {
    const url = `postgresql://postgres@127.0.0.1:${remote.port}/postgres`;
    const cwd = await tempRepo({
      'file/dbfast.toml': `[remotes.staging]\nurl = "${url}"\npassword_file = "secret.txt"\n`,
      'file/secret.txt': `${PASSWORD}\n`,
      'pgpass/dbfast.toml': `[remotes.staging]\nurl = "${url}"\n`,
      'pgpass/.pgpass': `127.0.0.1:${remote.port}:*:postgres:${PASSWORD}\n`,
    });
    folders.push(cwd);
    await chmod(join(cwd, 'pgpass/.pgpass'), 0o600);
    const fromFile = await runCli(['remote', 'test', 'staging'], { cwd: join(cwd, 'file') });
    expect(fromFile.code, fromFile.stdout).toBe(0);
    const fromPgpass = await runCli(['remote', 'test', 'staging'], { cwd: join(cwd, 'pgpass'), env: { PGPASSFILE: join(cwd, 'pgpass/.pgpass') } });
    expect(fromPgpass.code, fromPgpass.stdout).toBe(0);
    const without = await runCli(['remote', 'test', 'staging'], { cwd: join(cwd, 'pgpass'), env: { PGPASSFILE: join(cwd, 'none') } });
    expect(without.code).toBe(1);
    expect(without.stdout).toContain('✗ authentication');
  });

  it('a password variable that is not set exits 2, naming the variable', async () => {
    const result = await testIn(['test', 'staging']);
    expect(result.code).toBe(2);
    expect(result.errLines.at(-2)).toBe('error: dbfast.toml: remotes.staging.password_env names REMOTE_PW, which is not set');
  });

  it('an unknown remote exits 2 with a suggestion', async () => {
    const result = await testIn(['test', 'stagin'], { REMOTE_PW: PASSWORD });
    expect(result.code).toBe(2);
    expect(result.errLines.slice(-2)).toEqual(['error: unknown remote "stagin"', '  hint: did you mean "staging"? available: staging']);
  });

  it('status --check-remotes adds one line per remote, and exits 1 when one cannot be asked', async () => {
    const toml = `[remotes.staging]\nurl = "postgresql://postgres@127.0.0.1:${remote.port}/postgres"\npassword_env = "REMOTE_PW"\n\n[remotes.gone]\nurl = "postgresql://postgres@127.0.0.1:1/postgres"\n`;
    const cwd = await tempRepo({ 'dbfast.toml': toml, 'db/0_schema/01.sql': 'SELECT 1;' });
    folders.push(cwd);
    const env = { REMOTE_PW: PASSWORD, DBFAST_DATABASE_URL: testServerUrl() };
    const result = await runCli(['status', '--check-remotes'], { cwd, env });
    expect(result.code).toBe(1);
    const lines = result.stdout.split('\n');
    expect(lines.slice(lines.indexOf('remotes') + 1, -1)).toEqual([
      expect.stringMatching(/^ {4}staging {8}reachable, PostgreSQL 15\.\d+, \d+ ms$/),
      '    gone           connection refused at 127.0.0.1:1 (is the server running? check host and port in [remotes.gone])',
    ]);
    const json = await runCli(['status', '--check-remotes', '--json'], { cwd, env });
    expect(JSON.parse(json.stdout).remotes).toEqual([
      { name: 'staging', url: `postgresql://postgres@127.0.0.1:${remote.port}/postgres`, reachable: true, version: expect.stringMatching(/^15\./), latencyMs: expect.any(Number) },
      {
        name: 'gone',
        url: 'postgresql://postgres@127.0.0.1:1/postgres',
        reachable: false,
        error: 'connection refused at 127.0.0.1:1',
        hint: 'is the server running? check host and port in [remotes.gone]',
      },
    ]);
    expect(result.stdout + result.stderr + json.stdout).not.toContain(PASSWORD);
    const plain = await runCli(['status'], { cwd, env });
    expect(plain.code).toBe(0);
    expect(plain.stdout).not.toContain('remotes');
  });

  it('no output of any remote command contains the password', async () => {
    const commands = [['list'], ['list', '--verbose'], ['list', '--json'], ['test', 'staging'], ['test', 'staging', '--json'], ['--verbose', 'test', 'staging']];
    for (const args of commands) {
      const result = await testIn(args, { REMOTE_PW: PASSWORD });
      expect(result.code, args.join(' ')).toBe(0);
      expect(result.stdout + result.stderr, args.join(' ')).not.toContain(PASSWORD);
    }
  });
});

describe('dbfast remote add and remove', () => {
  const FILE = '# our database\r\n[environments.staging]   # aligned\r\n\r\n[environments.production]\r\n';

  async function projectWith(toml: string) {
    const cwd = await tempRepo({ 'dbfast.toml': toml, 'db/0_schema/01.sql': 'SELECT 1;' });
    folders.push(cwd);
    return { cwd, run: (args: string[]) => runCli(['remote', ...args], { cwd }), toml: () => readFile(join(cwd, 'dbfast.toml'), 'utf8') };
  }

  it('add then remove leaves dbfast.toml byte-identical (first remote, CRLF)', async () => {
    const project = await projectWith(FILE);
    const added = await project.run(['add', '--name', 'staging', '--url', 'postgresql://deploy@staging.example.com/app', '--env', 'staging', '--password-env', 'STAGING_PW', '--no-backup']);
    expect(added.code).toBe(0);
    expect(added.errLines).toEqual(['added remote staging: dbfast remote test staging checks it']);
    expect(await project.toml()).toBe(
      `${FILE}\r\n[remotes.staging]\r\nurl = "postgresql://deploy@staging.example.com/app"\r\nenvironment = "staging"\r\npassword_env = "STAGING_PW"\r\nbackup_before_deploy = false\r\n`,
    );
    const listed = await project.run(['list']);
    expect(listed.stdout).toBe('staging\tpostgresql://deploy@staging.example.com:5432/app\tstaging\tnot destructive, no backup, no confirmation\n');
    const removed = await project.run(['remove', 'staging']);
    expect(removed.code).toBe(0);
    expect(removed.errLines).toEqual(['removed remote staging']);
    expect(await project.toml()).toBe(FILE);
  });

  it('refuses a duplicate without --force and an unknown environment, exit 2, file untouched', async () => {
    const project = await projectWith(`${FILE}[remotes.staging]\r\nhost = "old"\r\n`);
    const before = await project.toml();
    const duplicate = await project.run(['add', '--name', 'staging', '--url', 'postgresql://d@h/app', '--env', 'staging']);
    expect(duplicate.code).toBe(2);
    expect(duplicate.errLines).toEqual(['error: remote "staging" already exists', '  hint: dbfast remote add --force replaces it']);
    const unknown = await project.run(['add', '--name', 'qa', '--url', 'postgresql://d@h/app', '--env', 'qa']);
    expect(unknown.code).toBe(2);
    expect(unknown.errLines).toEqual(['error: unknown environment "qa"', '  hint: available: staging, production']);
    expect(await project.toml()).toBe(before);
    const forced = await project.run(['add', '--name', 'staging', '--url', 'postgresql://d@h/app', '--env', 'staging', '--force']);
    expect(forced.code).toBe(0);
    expect(await project.toml()).not.toContain('old');
  });

  it('warns about a password in the URL without printing it', async () => {
    const project = await projectWith(FILE);
    const result = await project.run(['add', '--name', 'staging', '--url', `postgresql://deploy:${PASSWORD}@h/app`, '--env', 'staging']);
    expect(result.code).toBe(0);
    expect(result.errLines[0]).toBe(
      'warning: remotes.staging.url contains a password, now written in dbfast.toml: prefer --password-env (or password_file), so the file can be committed',
    );
    expect(result.stdout + result.stderr).not.toContain(PASSWORD);
  });

  it('add without --env is a usage error', async () => {
    const project = await projectWith(FILE);
    const result = await project.run(['add', '--name', 'staging', '--url', 'postgresql://d@h/app']);
    expect(result.code).toBe(2);
    expect(result.errLines).toEqual(['error: which environment is deployed to this remote? add --env ENVIRONMENT']);
  });
});
