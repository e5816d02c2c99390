import { utimesSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliProjects, lines, STACK_FRAME, uniqueName, withoutProgress } from '../helpers/cli.js';
import { query, queryUrl } from '../helpers/database.js';

const files = {
  'db/0_schema/01_tables.sql': 'CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL);',
  'db/1_seed/02_users.sql': "INSERT INTO users VALUES (1, 'alice');\nINSERT INTO users VALUES (2, 'bob');\n",
};

const tracked = cliProjects();
async function project() {
  return tracked(files);
}


async function databaseExists(name: string): Promise<boolean> {
  const rows = await query('postgres', `SELECT 1 FROM pg_database WHERE datname = '${name.replaceAll("'", "''")}'`);
  return rows.length === 1;
}

describe('dbfast seed', () => {
  it('prints exactly one line, a URL without password that connects to the seeded clone; progress goes to stderr', async () => {
    const { run, templateName } = await project();
    const result = await run(['seed']);
    expect(result.code).toBe(0);
    const out = lines(result.stdout);
    expect(out).toHaveLength(1);
    expect(result.stdout).toBe(`${out[0]}\n`);
    const url = new URL(out[0]!);
    expect(url.protocol).toBe('postgresql:');
    expect(url.password).toBe('');
    expect(url.username).toBe('postgres');
    expect(url.pathname).toMatch(new RegExp(`^/${templateName}_[0-9a-f]{8}$`));
    expect(await queryUrl(out[0]!, 'SELECT name FROM users ORDER BY id')).toEqual([{ name: 'alice' }, { name: 'bob' }]);
    expect(result.stderr).toContain('[1/2] db/0_schema/01_tables.sql');
    expect(result.stderr).toContain('[2/2] db/1_seed/02_users.sql');
    expect(result.stderr).toContain(`rebuilt ${templateName}`);
  });

  it('--json prints one object with the database, URL, template, rebuilt flag and timings', async () => {
    const { run, templateName } = await project();
    const first = await run(['seed', '--json']);
    expect(first.code).toBe(0);
    const result = JSON.parse(first.stdout);
    expect(Object.keys(result).sort()).toEqual(['database', 'pooled', 'rebuilt', 'template', 'timings', 'url']);
    expect(Object.keys(result.timings).sort()).toEqual(['build_ms', 'check_ms', 'clone_ms', 'total_ms']);
    for (const value of Object.values(result.timings)) expect(value).toBeTypeOf('number');
    expect(result.timings.total_ms).toBeGreaterThanOrEqual(result.timings.clone_ms);
    expect(result.timings.build_ms).toBeGreaterThan(0);
    expect(result).toMatchObject({ template: templateName, rebuilt: true });
    expect(result.url).toMatch(new RegExp(`^postgresql://postgres@127\\.0\\.0\\.1:\\d+/${result.database}$`));
    expect(await databaseExists(result.database)).toBe(true);

    const second = JSON.parse((await run(['seed', '--json'])).stdout);
    expect(second.rebuilt).toBe(false);
    expect(second.timings.build_ms).toBeLessThan(5);
    expect(second.database).not.toBe(result.database);
  });

  it('rebuilds after a SQL file changes, and the next clone has the change (edit, rebuild, clone)', async () => {
    const { run, root } = await project();
    const before = JSON.parse((await run(['seed', '--json'])).stdout);
    expect(JSON.parse((await run(['seed', '--json'])).stdout).rebuilt).toBe(false);

    await writeFile(join(root, 'db/1_seed/02_users.sql'), "INSERT INTO users VALUES (1, 'carol');\n");
    const after = await run(['seed', '--json']);
    expect(after.code).toBe(0);
    const rebuilt = JSON.parse(after.stdout);
    expect(rebuilt.rebuilt).toBe(true);
    expect(await queryUrl(rebuilt.url, 'SELECT name FROM users ORDER BY id')).toEqual([{ name: 'carol' }]);
    // Clones already handed out are left alone.
    expect(await queryUrl(before.url, 'SELECT name FROM users ORDER BY id')).toEqual([{ name: 'alice' }, { name: 'bob' }]);
  });

  it('rebuilds after an edit that kept the size and had its old mtime restored', async () => {
    const { run, root } = await project();
    const seedFile = join(root, 'db/1_seed/02_users.sql');
    const anHourAgo = new Date(Date.now() - 3_600_000);
    utimesSync(seedFile, anHourAgo, anHourAgo);
    expect(JSON.parse((await run(['seed', '--json'])).stdout).rebuilt).toBe(true);

    const edited = files['db/1_seed/02_users.sql'].replace('alice', 'alicE');
    writeFileSync(seedFile, edited);
    utimesSync(seedFile, anHourAgo, anHourAgo);
    const after = await run(['seed', '--json']);
    expect(after.code, after.stderr).toBe(0);
    const seeded = JSON.parse(after.stdout);
    expect(seeded.rebuilt).toBe(true);
    expect(await queryUrl(seeded.url, 'SELECT name FROM users ORDER BY id')).toEqual([{ name: 'alicE' }, { name: 'bob' }]);
  });

  it('-o NAME creates that database; the same name again needs --replace, which recreates it', async () => {
    const { run } = await project();
    const name = uniqueName('named');
    const created = await run(['seed', '-o', name]);
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(new RegExp(`^postgresql://postgres@127\\.0\\.0\\.1:\\d+/${name}\\n$`));
    await query(name, "INSERT INTO users VALUES (3, 'scribble')");

    const again = await run(['seed', '-o', name]);
    expect(again.code).toBe(2);
    expect(again.stdout).toBe('');
    expect(again.errLines[0]).toBe(`error: database "${name}" already exists`);
    expect(again.stderr).toContain('--replace');
    expect(again.stderr).not.toMatch(STACK_FRAME);
    expect(await query(name, 'SELECT count(*)::int AS n FROM users')).toEqual([{ n: 3 }]);

    const replaced = await run(['seed', '--output', name, '--replace']);
    expect(replaced.code).toBe(0);
    expect(replaced.stdout).toBe(created.stdout);
    expect(await query(name, 'SELECT count(*)::int AS n FROM users')).toEqual([{ n: 2 }]);
  });

  it('--replace never drops a database dbfast did not create', async () => {
    const { run } = await project();
    const name = uniqueName('foreign');
    await query('postgres', `CREATE DATABASE ${name}`);
    try {
      await query(name, 'CREATE TABLE precious (id int)');
      const result = await run(['seed', '-o', name, '--replace']);
      expect(result.code).toBe(2);
      expect(result.stdout).toBe('');
      expect(withoutProgress(result)[0]).toBe(`error: database "${name}" already exists and was not created by dbfast`);
      expect(await query(name, "SELECT to_regclass('precious')::text AS t")).toEqual([{ t: 'precious' }]);
    } finally {
      await query('postgres', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  });

  it('concurrent seeds of a changed repository build the template once and all get a clone', async () => {
    const { run } = await project();
    const results = await Promise.all([1, 2, 3, 4].map(() => run(['seed', '--json'])));
    for (const result of results) expect(result.code).toBe(0);
    const seeded = results.map((result) => JSON.parse(result.stdout));
    expect(seeded.filter((item) => item.rebuilt)).toHaveLength(1);
    expect(new Set(seeded.map((item) => item.database)).size).toBe(4);
    for (const item of seeded) {
      expect(await queryUrl(item.url, 'SELECT count(*)::int AS n FROM users')).toEqual([{ n: 2 }]);
    }
  });

  it.each([
    ['70 characters', 'x'.repeat(70), 'is longer than 63 bytes'],
    ['a space', 'has space', 'may contain only letters, digits, _, $ and -'],
    ['a quote', 'bad"name', 'may contain only letters, digits, _, $ and -'],
  ])('refuses a name with %s (exit 2, nothing created)', async (_what, name, message) => {
    const { run } = await project();
    const result = await run(['seed', '-o', name]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`error: database name "${name}" ${message}`);
    expect(result.stderr).not.toMatch(STACK_FRAME);
    expect(await databaseExists(name)).toBe(false);
    expect(await databaseExists(name.slice(0, 63))).toBe(false);
  });
});
