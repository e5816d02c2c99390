import { chmod, lstat, mkdtemp, readFile, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config/index.js';
import { configuredTarget } from '../../src/core/pg/target.js';
import { addRemote, describeRemotes, removeRemote } from '../../src/core/remote.js';

let root: string;

beforeEach(async () => {
  root = await realpath(await mkdtemp(path.join(os.tmpdir(), 'dbfast-remote-')));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function configWith(toml: string, env: NodeJS.ProcessEnv = {}) {
  await writeFile(path.join(root, 'dbfast.toml'), toml);
  return loadConfig({ cwd: root, env });
}

const ENVIRONMENTS = '[environments.production]\n[environments.Prod]\ntemplate_name = "t_prod"\n[environments.staging]\n';

describe('describeRemotes', () => {
  it('lists each remote in file order with its URL, environment and safety settings', async () => {
    const config = await configWith(`${ENVIRONMENTS}
[remotes.staging]
host = "staging.example.com"
port = 6543
user = "deploy"
database = "app"
password_env = "STAGING_PW"
environment = "staging"
allow_destructive = true
backup_before_deploy = false

[remotes.archive]
url = "postgresql://reader@archive.example.com/old?sslmode=require"
`);
    expect(describeRemotes(config, { STAGING_PW: 'x' })).toEqual([
      {
        name: 'staging',
        url: 'postgresql://deploy@staging.example.com:6543/app',
        environment: 'staging',
        requireConfirmation: false,
        allowDestructive: true,
        backupBeforeDeploy: false,
        passwordFrom: 'password_env STAGING_PW',
      },
      {
        name: 'archive',
        url: 'postgresql://reader@archive.example.com:5432/old?sslmode=require',
        requireConfirmation: false,
        allowDestructive: false,
        backupBeforeDeploy: true,
        passwordFrom: 'PGPASSWORD or ~/.pgpass',
      },
    ]);
  });

  it('masks a password written into the URL, and never shows one from a variable or file', async () => {
    await writeFile(path.join(root, 'pw.txt'), 'from-the-file\n');
    const config = await configWith(`
[remotes.inline]
url = "postgresql://deploy:hunter2@db.example.com/app"
[remotes.variable]
url = "postgresql://deploy@db.example.com/app"
password_env = "DB_PW"
[remotes.file]
url = "postgresql://deploy@db.example.com/app"
password_file = "pw.txt"
`);
    const remotes = describeRemotes(config, { DB_PW: 'from-the-variable' });
    expect(remotes.map((remote) => [remote.url, remote.passwordFrom])).toEqual([
      ['postgresql://deploy:****@db.example.com:5432/app', 'url'],
      ['postgresql://deploy@db.example.com:5432/app', 'password_env DB_PW'],
      ['postgresql://deploy@db.example.com:5432/app', `password_file ${path.join(root, 'pw.txt')}`],
    ]);
    expect(JSON.stringify(remotes)).not.toMatch(/hunter2|from-the-/);
  });

  it('never prints the client key passphrase (sslpassword) of a URL, and warns that the URL holds a secret', async () => {
    const config = await configWith('[remotes.tls]\nurl = "postgresql://deploy@db.example.com/app?sslmode=require&sslpassword=hunter2"\n');
    expect(describeRemotes(config, {})[0]?.url).toBe('postgresql://deploy@db.example.com:5432/app?sslmode=require');
    expect(config.warnings.map((warning) => warning.message)).toEqual(['remotes.tls.url contains a password']);
    expect(JSON.stringify(describeRemotes(config, {}))).not.toContain('hunter2');
  });

  it('says when the password variable is not set, naming it without a value', async () => {
    const config = await configWith('[remotes.staging]\nhost = "h"\npassword_env = "STAGING_PW"\n');
    expect(describeRemotes(config, {})[0]?.passwordFrom).toBe('password_env STAGING_PW (not set)');
  });

  it('takes what the URL leaves out from the libpq variables, as connecting would', async () => {
    const config = await configWith('[remotes.staging]\nurl = "postgresql:///app"\n');
    expect(describeRemotes(config, { PGHOST: 'pg.internal', PGPORT: '5433', PGUSER: 'ci' })[0]?.url).toBe(
      'postgresql://ci@pg.internal:5433/app',
    );
  });

  it('is empty without remotes', async () => {
    expect(describeRemotes(await configWith(''), {})).toEqual([]);
  });
});

describe('remote settings', () => {
  it('require confirmation by default for an environment named production or prod, in any case', async () => {
    const config = await configWith(`${ENVIRONMENTS}
[remotes.a]
environment = "production"
[remotes.b]
environment = "Prod"
[remotes.c]
environment = "staging"
[remotes.d]
[remotes.e]
environment = "production"
require_confirmation = false
`);
    expect(Object.values(config.remotes).map((remote) => remote.requireConfirmation)).toEqual([true, true, false, false, false]);
  });

  it('connect_timeout_ms bounds each connection attempt', async () => {
    const config = await configWith('[remotes.slow]\nhost = "h"\nconnect_timeout_ms = 2500\n[remotes.usual]\nhost = "h"\n');
    const timeout = async (name: string) =>
      (await configuredTarget(config.remotes[name]!, config, {})).clientConfig().connectionTimeoutMillis;
    expect(await timeout('slow')).toBe(2500);
    expect(await timeout('usual')).toBe(10_000);
  });

  it('connect_timeout_ms must be a positive integer', async () => {
    const error = await configWith('[remotes.slow]\nconnect_timeout_ms = 0\n').catch((caught: unknown) => caught);
    expect((error as Error).message).toBe('remotes.slow.connect_timeout_ms must be a positive integer');
  });
});

describe('addRemote and removeRemote', () => {
  const TOML = '# team settings\r\n[environments.staging]\r\n[environments.production]\r\n';
  const toml = () => readFile(path.join(root, 'dbfast.toml'), 'utf8');

  it('add then remove leaves dbfast.toml byte-identical, and the remote loads in between', async () => {
    const config = await configWith(TOML);
    // The settings add writes are the settings the loaded configuration reads back.
    const settings = {
      url: 'postgresql://deploy@staging.example.com/app',
      environment: 'staging',
      passwordEnv: 'STAGING_PW',
      allowDestructive: true,
      backupBeforeDeploy: false,
      requireConfirmation: true,
    };
    const { replaced, warnings } = await addRemote(config, { name: 'staging', ...settings });
    expect([replaced, warnings]).toEqual([false, []]);
    const reloaded = await loadConfig({ cwd: root, env: {} });
    expect(reloaded.remotes.staging).toMatchObject(settings);
    await removeRemote(reloaded, 'staging');
    expect(await toml()).toBe(TOML);
  });

  it('writes only the safety settings that differ from the defaults', async () => {
    const config = await configWith(TOML);
    await addRemote(config, { name: 'prod', url: 'postgresql://deploy@db/app', environment: 'production', backupBeforeDeploy: true });
    expect(await toml()).toBe(`${TOML}\r\n[remotes.prod]\r\nurl = "postgresql://deploy@db/app"\r\nenvironment = "production"\r\n`);
  });

  it('refuses a duplicate name unless forced, then replaces it', async () => {
    const config = await configWith(`${TOML}[remotes.staging]\r\nhost = "old"\r\n`);
    const remote = { name: 'staging', url: 'postgresql://deploy@new/app', environment: 'staging' };
    await expect(addRemote(config, remote)).rejects.toMatchObject({ code: 'USAGE', message: 'remote "staging" already exists', hint: 'dbfast remote add --force replaces it' });
    expect((await addRemote(config, remote, { force: true })).replaced).toBe(true);
    expect((await loadConfig({ cwd: root, env: {} })).remotes.staging).toMatchObject({ url: 'postgresql://deploy@new/app' });
    expect(await toml()).not.toContain('old');
  });

  it('refuses an unknown environment, a name that is no bare key, an invalid URL and variable, writing nothing', async () => {
    const config = await configWith(TOML);
    const remote = { name: 'staging', url: 'postgresql://deploy@h/app', environment: 'staging' };
    await expect(addRemote(config, { ...remote, environment: 'stage' })).rejects.toMatchObject({ message: 'unknown environment "stage"', hint: 'available: staging, production' });
    await expect(addRemote(config, { ...remote, name: 'my remote' })).rejects.toMatchObject({ message: 'remote name "my remote" may hold only letters, digits, _ and -' });
    await expect(addRemote(config, { ...remote, url: 'mysql://u:secret@h/db' })).rejects.toMatchObject({ message: '--url must start with postgresql://, not mysql://' });
    await expect(addRemote(config, { ...remote, passwordEnv: 'MY-PW' })).rejects.toMatchObject({ code: 'USAGE' });
    expect(await toml()).toBe(TOML);
  });

  it('accepts a password in the URL with a warning that names no password', async () => {
    const config = await configWith(TOML);
    const { warnings } = await addRemote(config, { name: 'staging', url: 'postgresql://deploy:hunter2@h/app', environment: 'staging' });
    expect(warnings).toEqual(['remotes.staging.url contains a password, now written in dbfast.toml: prefer --password-env (or password_file), so the file can be committed']);
  });

  it('keeps the file\'s permissions and edits the file a symbolic link points to', async () => {
    const real = path.join(root, 'real.toml');
    await writeFile(real, TOML);
    await chmod(real, 0o640);
    await symlink(real, path.join(root, 'dbfast.toml'));
    const config = await loadConfig({ cwd: root, env: {} });
    await addRemote(config, { name: 'staging', url: 'postgresql://deploy@h/app', environment: 'staging' });
    expect((await lstat(path.join(root, 'dbfast.toml'))).isSymbolicLink()).toBe(true);
    expect((await stat(real)).mode & 0o777).toBe(0o640);
    expect(await readFile(real, 'utf8')).toContain('[remotes.staging]');
  });

  it('removing an unknown remote is a usage error with the available ones', async () => {
    const config = await configWith(`${TOML}[remotes.staging]\r\nhost = "h"\r\n`);
    await expect(removeRemote(config, 'stagin')).rejects.toMatchObject({ code: 'USAGE', message: 'unknown remote "stagin"' });
  });

  it('without dbfast.toml there is nothing to edit', async () => {
    const config = await loadConfig({ cwd: root, env: {} });
    await expect(addRemote(config, { name: 's', url: 'postgresql://h/a', environment: 'x' })).rejects.toMatchObject({ code: 'CONFIG_NOT_FOUND' });
  });
});
