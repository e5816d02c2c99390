import { rm } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, STACK_FRAME } from '../helpers/cli.js';
import { tempRepo } from '../helpers/repo.js';

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
