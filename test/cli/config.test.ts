import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  cliProjects,
  lines,
  runCli,
  STACK_FRAME,
  testServerUrl,
  uniqueName,
} from '../helpers/cli.js';
import { query } from '../helpers/database.js';
import { tempRepo } from '../helpers/repo.js';

const sql = { 'db/0_schema/01_tables.sql': 'CREATE TABLE items (id int);' };

const tracked = cliProjects();
async function project(extraToml: string, files: Record<string, string> = sql) {
  return tracked(files, extraToml);
}

describe('configuration errors', () => {
  it('-c naming a missing file exits 2, naming the file once', async () => {
    const { run } = await project('');
    const result = await run(['-c', 'missing.toml', 'seed']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.errLines).toEqual(['error: missing.toml: config file not found']);
  });

  it('shows every problem of the file in one run, each with its hint, and never the password', async () => {
    const { run } = await project(
      'port = 99999\npassword = "s3cret-value"\ndefault_environment = "staging"\n' +
        '[environments.local]\ninclude_directories = ["0_schema"]\n',
    );
    for (const args of [['seed'], ['list', '--json']]) {
      const result = await run(args);
      expect(result.code).toBe(2);
      const json = args.includes('--json');
      if (json) expect(JSON.parse(result.stdout).error).toMatchObject({ code: 'CONFIG_INVALID', message: '3 configuration problems' });
      else expect(result.stdout).toBe('');
      expect(result.stdout).not.toContain('s3cret-value');
      expect(result.errLines).toEqual([
        'error: dbfast.toml: 3 configuration problems',
        '  database.password is not allowed: passwords do not belong in dbfast.toml',
        '    hint: use password_env = "NAME_OF_AN_ENV_VAR", password_file = "path/to/file" or ~/.pgpass',
        '  database.port must be a port number (1-65535)',
        '  database.default_environment names "staging", which is not a configured environment',
        '    hint: configured environments: local',
      ]);
      expect(result.stderr).not.toContain('s3cret-value');
    }
  });

  it('names the file given with -c, not dbfast.toml', async () => {
    const { run, root } = await project('');
    await mkdir(join(root, 'conf'));
    await writeFile(join(root, 'conf/other.toml'), '[environments.local]\ninclude_directories = ["0_schema"]\n[environments.Staging]\n');
    const result = await run(['-c', 'conf/other.toml', 'seed']);
    expect(result.code).toBe(2);
    expect(result.errLines).toEqual([
      'error: conf/other.toml: environments.Staging: template name "conf_template_Staging" must be a lowercase identifier (a-z, 0-9 and _, not starting with a digit)',
      "  hint: without a template_name of its own, an environment's template is named <template>_<environment>: set template_name in [environments.Staging]",
    ]);
  });

  it('include_patterns = [] exits 2 at once, saying that nothing can be selected', async () => {
    const { run } = await project('\n[repository]\ninclude_patterns = []\n');
    const result = await run(['seed']);
    expect(result.code).toBe(2);
    expect(result.errLines).toEqual([
      'error: dbfast.toml: repository.include_patterns is empty: no file can be selected',
      '  hint: list the files to build, e.g. ["**/*.sql"], or remove the key for that default',
    ]);
  });

  it('a [remotes.NAME] section needs no connection and warns of nothing', async () => {
    const { run } = await project('\n[remotes.staging]\nurl = "postgresql://deploy@staging.example.com/app"\n');
    const result = await run(['seed']);
    expect(result.code).toBe(0);
    expect(result.stderr).not.toContain('warning');
    expect(result.stdout).toMatch(/^postgresql:\/\//);
  });

  it('an invalid DBFAST_DATABASE_URL is named as such', async () => {
    const { run } = await project('');
    const result = await run(['seed'], { env: { DBFAST_DATABASE_URL: 'postgres://127.0.0.1/db?sslmode=bogus' } });
    expect(result.code).toBe(2);
    expect(result.errLines).toEqual([
      'error: DBFAST_DATABASE_URL has an unknown sslmode',
      '  hint: sslmode is one of disable, allow, prefer, require, verify-ca, verify-full',
    ]);
  });

  it('an invalid URL never prints its password, wherever it is written', async () => {
    const { run, root } = await project('');
    for (const url of ['mysql://u:secret@h/db', 'postgresql://u:sec ret@h:notaport/db', 'u:secret@h/db']) {
      const runs: [string, string[], Record<string, string>][] = [
        ['DBFAST_DATABASE_URL', ['seed'], { DBFAST_DATABASE_URL: url }],
        ['database.url', ['--verbose', 'seed'], {}],
        ['remotes.staging.url', ['list', '--json'], {}],
      ];
      for (const [origin, args, env] of runs) {
        const section = origin === 'remotes.staging.url' ? '[remotes.staging]' : '[database]';
        const toml = origin === 'DBFAST_DATABASE_URL' ? '' : `${section}\nurl = ${JSON.stringify(url)}\n`;
        await writeFile(join(root, 'dbfast.toml'), toml);
        const result = await run(args, { env });
        expect(result.code).toBe(2);
        expect(result.errLines[0]).toMatch(new RegExp(`^error: (dbfast\\.toml: )?${origin.replace(/\./g, '\\.')} `));
        expect(result.stdout + result.stderr).not.toContain('secret');
      }
    }
  });

  it('an invalid value exits 2 and names the file and the key', async () => {
    const { run } = await project('\n[environments.local]\ninclude_directories = "x"\n');
    const result = await run(['seed']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('dbfast.toml: environments.local.include_directories must be a list of strings');
    expect(result.stderr).not.toMatch(STACK_FRAME);
  });

  it('invalid TOML exits 2 with the line and column', async () => {
    const { run } = await project('port = \n');
    const result = await run(['list']);
    expect(result.code).toBe(2);
    expect(result.errLines[0]).toMatch(/^error: dbfast\.toml:3:\d+: invalid TOML: /);
  });

  it('an unknown key is a warning with a did-you-mean hint, and the command still succeeds', async () => {
    const { run } = await project('\n[repositry]\npath = "db"\n');
    const result = await run(['seed']);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('warning: dbfast.toml: unknown key repositry (did you mean "repository"?)');
    expect(lines(result.stdout)).toHaveLength(1);
    expect(result.stdout).toMatch(/^postgresql:\/\//);
  });

  it('a password in dbfast.toml exits 2 without ever printing it, whatever the case of the key', async () => {
    for (const key of ['password', 'Password', 'PASSWORD']) {
      const { run } = await project(`${key} = "s3cret-value"\n`);
      for (const args of [['seed'], ['--verbose', 'seed'], ['list', '--json']]) {
        const result = await run(args);
        expect(result.code).toBe(2);
        expect(result.errLines[0]).toBe(
          `error: dbfast.toml: database.${key} is not allowed: passwords do not belong in dbfast.toml`,
        );
        expect(result.stdout + result.stderr).not.toContain('s3cret-value');
      }
    }
  });

  it('a missing repository folder exits 2', async () => {
    const { run } = await project('\n[repository]\npath = "nowhere"\n');
    const result = await run(['seed']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.errLines[0]).toMatch(/^error: repository folder not found: .*nowhere$/);
  });

  it('a repository without SQL files exits 2', async () => {
    const { run, root } = await project('', { 'db/README.md': 'no SQL here\n' });
    await mkdir(join(root, 'db/0_schema'));
    await writeFile(join(root, 'db/0_schema/notes.txt'), 'nothing');
    const result = await run(['seed'], { cwd: join(root, 'db/0_schema') });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    // Named from the dbfast.toml folder, as every path dbfast prints, wherever dbfast runs from.
    expect(result.errLines[0]).toBe('error: no SQL files in db');
    expect(result.stderr).toContain('hint: nothing matches **/*.sql');
  });

  it('a template_name naming a database dbfast did not create exits 2 and leaves it alone', async () => {
    const foreign = uniqueName('foreign');
    let cleanupRoot: string | undefined;
    await query('postgres', `CREATE DATABASE ${foreign}`);
    try {
      await query(foreign, 'CREATE TABLE precious (id int)');
      const root = await tempRepo({ 'dbfast.toml': `[database]\ntemplate_name = "${foreign}"\n`, ...sql });
      cleanupRoot = root;
      for (const args of [['seed'], ['build', '--force']]) {
        const result = await runCli(args, { cwd: root, env: { DBFAST_DATABASE_URL: testServerUrl() } });
        expect(result.code).toBe(2);
        expect(result.stdout).toBe('');
        expect(result.errLines[0]).toBe(`error: database "${foreign}" exists and was not created by dbfast`);
      }
      expect(await query(foreign, "SELECT to_regclass('precious')::text AS t")).toEqual([{ t: 'precious' }]);
      expect(await query('postgres', `SELECT datistemplate FROM pg_database WHERE datname = '${foreign}'`)).toEqual([
        { datistemplate: false },
      ]);
    } finally {
      await query('postgres', `DROP DATABASE IF EXISTS ${foreign} WITH (FORCE)`);
      if (cleanupRoot) await rm(cleanupRoot, { recursive: true, force: true });
    }
  });
});
