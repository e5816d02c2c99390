import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliProjects, STACK_FRAME, withoutProgress } from '../helpers/cli.js';
import { query } from '../helpers/database.js';

const schema = 'CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL);';
const goodSeed = "INSERT INTO users VALUES (1, 'alice');\n";
const duplicateKey = "INSERT INTO users VALUES (1, 'alice');\n\n  INSERT INTO users VALUES (1, 'again');\n";
const duplicateKeyError = [
  'error: db/1_seed/02_users.sql:3:3: duplicate key value violates unique constraint "users_pkey"',
  '  DETAIL: Key (id)=(1) already exists.',
];

const tracked = cliProjects();
async function project(seed: string) {
  return tracked({ 'db/0_schema/01_tables.sql': schema, 'db/1_seed/02_users.sql': seed });
}

describe('SQL errors', () => {
  it('stop with exit 1 and file:line:column, PostgreSQL DETAIL, no stack trace', async () => {
    const { run } = await project(duplicateKey);
    const result = await run(['seed']);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    // Only progress lines come before the error.
    expect(withoutProgress(result)).toEqual(duplicateKeyError);
    expect(result.stderr).not.toMatch(STACK_FRAME);
    expect(result.stderr).not.toContain('--verbose');
  });

  it('are warnings where a file turned ON_ERROR_STOP off: the build goes on and succeeds', async () => {
    const { run } = await project(`\\unset ON_ERROR_STOP\n${duplicateKey}INSERT INTO users VALUES (2, 'bob');\n`);
    const result = await run(['build', '--json']);
    expect(result.code).toBe(0);
    expect(withoutProgress(result)).toEqual([
      'warning: db/1_seed/02_users.sql:4:3: duplicate key value violates unique constraint "users_pkey"',
    ]);
    expect(JSON.parse(result.stdout).stats).toMatchObject({ statements: 4, failedStatements: 1 });
  });

  it('point at the column PostgreSQL reports, inside a multi-line statement', async () => {
    const { run } = await project("INSERT INTO users VALUES (1, 'a');\nINSERT INTO users (id, name)\n  VALUES (2, nosuch);\n");
    const result = await run(['build']);
    expect(result.code).toBe(1);
    expect(withoutProgress(result)).toEqual(['error: db/1_seed/02_users.sql:3:14: column "nosuch" does not exist']);
  });

  it('show paths relative to the dbfast.toml folder, wherever dbfast runs from', async () => {
    const { run, root } = await project(duplicateKey);
    const fromSubfolder = await run(['seed'], { cwd: join(root, 'db/1_seed') });
    expect(fromSubfolder.code).toBe(1);
    expect(withoutProgress(fromSubfolder)).toEqual(duplicateKeyError);
    const elsewhere = join(root, 'elsewhere');
    await mkdir(elsewhere);
    const withConfigFlag = await run(['-c', join(root, 'dbfast.toml'), 'seed'], { cwd: elsewhere });
    expect(withConfigFlag.code).toBe(1);
    expect(withoutProgress(withConfigFlag)).toEqual(duplicateKeyError);
  });

  it('refuse \\connect with the file and line', async () => {
    const { run } = await project(`${goodSeed}\\connect other\n`);
    const result = await run(['seed']);
    expect(result.code).toBe(1);
    expect(withoutProgress(result)[0]).toBe(
      'error: db/1_seed/02_users.sql:2:1: \\connect is not supported: dbfast runs every file in the database it is building',
    );
  });

  it('come with a stack trace under --verbose or DBFAST_DEBUG=1', async () => {
    const { run } = await project(duplicateKey);
    const verbose = await run(['--verbose', 'seed']);
    expect(verbose.code).toBe(1);
    expect(withoutProgress(verbose).slice(0, 2)).toEqual(duplicateKeyError);
    expect(verbose.stderr).toMatch(STACK_FRAME);
    expect(verbose.stderr).toContain('DbfastError: duplicate key value');

    const debug = await run(['seed'], { env: { DBFAST_DEBUG: '1' } });
    expect(debug.code).toBe(1);
    expect(debug.stderr).toMatch(STACK_FRAME);
  });
});

describe('include cycles', () => {
  it.each([
    ['a file that includes itself', { 'db/0/a.sql': 'SELECT 1;\n\\ir a.sql\n' }, 'db/0/a.sql:2:1: \\ir a.sql: include cycle db/0/a.sql -> db/0/a.sql'],
    [
      'two files that include each other',
      { 'db/0/a.sql': '\\ir b.sql\n', 'db/0/b.sql': '\\ir a.sql\n' },
      'db/0/b.sql:1:1: \\ir a.sql: include cycle db/0/a.sql -> db/0/b.sql -> db/0/a.sql',
    ],
    [
      'three files in a ring',
      { 'db/0/a.sql': '\\ir b.sql\n', 'db/0/b.sql': '\\ir c.sql\n', 'db/0/c.sql': '\\ir a.sql\n' },
      'db/0/c.sql:1:1: \\ir a.sql: include cycle db/0/a.sql -> db/0/b.sql -> db/0/c.sql -> db/0/a.sql',
    ],
    [
      'a cycle below the file dbfast runs',
      { 'db/0/a.sql': '\\ir inc/x.inc\n', 'db/0/inc/x.inc': '\\ir y.inc\n', 'db/0/inc/y.inc': '\\i ../inc/x.inc\n' },
      'db/0/inc/y.inc:1:1: \\i ../inc/x.inc: include cycle db/0/inc/x.inc -> db/0/inc/y.inc -> db/0/inc/x.inc',
    ],
  ])('are reported as the chain of files: %s (exit 1)', async (_what, files, message) => {
    const made = await tracked(files);
    const result = await made.run(['build']);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(withoutProgress(result)).toEqual([`error: ${message}`]);
  });
});

describe('symbolic links in the repository', () => {
  it('are ignored where no pattern selects them: an editor lock file, a loop in a folder no pattern reaches', async () => {
    const { run, root } = await project(goodSeed);
    await symlink('someone@host.1234:1700000000', join(root, 'db/1_seed/.#02_users.sql'));
    await mkdir(join(root, 'db/docs'));
    await symlink('..', join(root, 'db/docs/up'));
    await writeFile(join(root, 'dbfast.toml'), `${await readFile(join(root, 'dbfast.toml'), 'utf8')}[repository]\nexclude_patterns = ["docs/**"]\n`);
    const result = await run(['build']);
    expect(result.code, result.stderr).toBe(0);
    expect(withoutProgress(result)).toEqual([expect.stringMatching(/^built cli_\w+: 2 files, /)]);
  });

  it('fail the build when a selected link is dangling, named from the dbfast.toml folder (exit 1)', async () => {
    const { run, root } = await project(goodSeed);
    await symlink('gone.sql', join(root, 'db/1_seed/03_more.sql'));
    const result = await run(['build'], { cwd: join(root, 'db/1_seed') });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.errLines).toEqual([
      'error: db/1_seed/03_more.sql: dangling symbolic link: gone.sql does not exist',
      '  hint: restore its target or remove the link',
    ]);
  });

  it('fail the build on a loop the patterns would follow forever (exit 1)', async () => {
    const { run, root } = await project(goodSeed);
    await symlink('..', join(root, 'db/1_seed/up'));
    const result = await run(['build']);
    expect(result.code).toBe(1);
    expect(result.errLines).toEqual(['error: db/1_seed/up: symbolic link loop: points back to db']);
  });
});

describe('a failed build', () => {
  it('keeps the previous template and clones; reverting the file needs no rebuild', async () => {
    const { run, root, templateName } = await project(goodSeed);
    const seedFile = join(root, 'db/1_seed/02_users.sql');
    const first = await run(['seed', '--json']);
    expect(first.code).toBe(0);
    const clone = JSON.parse(first.stdout);
    await query(clone.database, "INSERT INTO users VALUES (7, 'work in progress')");

    await writeFile(seedFile, duplicateKey);
    const failed = await run(['seed']);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toBe('');
    expect(withoutProgress(failed)).toEqual(duplicateKeyError);

    // The template and the clone are untouched, and no half-built database is left behind (pool spares and layer checkpoints are not half-built).
    const listed = await run(['list', '--json']);
    expect(listed.code).toBe(0);
    const mine = JSON.parse(listed.stdout).filter((item: { template: string }) => item.template === templateName);
    expect(mine.map((item: { name: string }) => item.name)).toEqual([clone.database]);
    expect(await query(clone.database, 'SELECT id, name FROM users ORDER BY id')).toEqual([
      { id: 1, name: 'alice' },
      { id: 7, name: 'work in progress' },
    ]);
    const databases = await query<{ datname: string }>(
      'postgres',
      `SELECT datname FROM pg_database WHERE datname LIKE '${templateName}%' AND datname <> '${clone.database}'
          AND datname !~ '__(p[0-9a-f]{8}|c[0-9]+)$' ORDER BY 1`,
    );
    expect(databases.map((row) => row.datname)).toEqual([templateName]);

    await writeFile(seedFile, goodSeed);
    const reverted = await run(['seed', '--json']);
    expect(reverted.code).toBe(0);
    const again = JSON.parse(reverted.stdout);
    expect(again.rebuilt).toBe(false);
    expect(await query(again.database, 'SELECT id, name FROM users ORDER BY id')).toEqual([{ id: 1, name: 'alice' }]);
  });
});
