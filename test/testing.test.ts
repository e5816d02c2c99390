import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { afterAll, beforeEach, describe, expect, inject, it, type MockInstance, vi } from 'vitest';
import { createTestDatabase, prepareTemplate, withTestDatabase } from '../src/testing.js';
import { cliEnv, dropTemplateAndClones, REPO_ROOT, uniqueName } from './helpers/cli.js';
import { query } from './helpers/database.js';
import { tempRepo } from './helpers/repo.js';

const template = uniqueName('testing');
const root = await tempRepo({
  'dbfast.toml': `[database]\ntemplate_name = "${template}"\n`,
  'db/0_schema/01_items.sql': "CREATE TABLE items (name text PRIMARY KEY);\nINSERT INTO items VALUES ('seeded');",
});
// The server trusts local logins; the password is there to prove that no line ever shows it.
const PASSWORD = 'never-printed-8d1f';
const options = { cwd: root, env: { DBFAST_DATABASE_URL: `postgresql://postgres:${PASSWORD}@127.0.0.1:${inject('serverPort')}/postgres` } };
const urlOf = (name: string) => `postgresql://postgres@127.0.0.1:${inject('serverPort')}/${name}`;

let stderr: MockInstance<typeof process.stderr.write>;
beforeEach(() => {
  stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  return () => {
    const output = printed().join('');
    stderr.mockRestore();
    expect(output).not.toContain(PASSWORD);
  };
});
const printed = () => stderr.mock.calls.map(([chunk]) => String(chunk));

afterAll(async () => {
  await dropTemplateAndClones(template);
  await rm(root, { recursive: true, force: true });
});

async function exists(database: string): Promise<boolean> {
  return (await query('postgres', `SELECT 1 FROM pg_database WHERE datname = '${database}'`)).length > 0;
}

async function insert(database: string, name: string): Promise<void> {
  await query(database, `INSERT INTO items VALUES ('${name}')`);
}

describe('dbfast/testing', () => {
  it('prepareTemplate builds the template once and fills the warm pool', async () => {
    expect(await prepareTemplate(options)).toEqual({ template, rebuilt: true, spares: 2 });
    expect(await prepareTemplate(options)).toEqual({ template, rebuilt: false, spares: 0 });
  });

  it('gives each test a seeded database of its own and drops it on release', async () => {
    const [first, second] = await Promise.all([createTestDatabase(options), createTestDatabase(options)]);
    expect(first).toMatchObject({ template, url: urlOf(first.name) });
    expect(second.name).not.toBe(first.name);
    await insert(first.name, 'first');
    expect(await query(second.name, 'SELECT name FROM items')).toEqual([{ name: 'seeded' }]);

    await Promise.all([first.release(), second.release({ failed: false })]);
    await first.release();
    expect(await exists(first.name)).toBe(false);
    expect(await exists(second.name)).toBe(false);
    expect(printed()).toEqual([]);
  });

  it('keeps the database of a failed test as the test left it and prints one line with its URL', async () => {
    const database = await createTestDatabase(options);
    await insert(database.name, 'kept');
    await database.release({ failed: true, test: 'creates a user' });
    await database.release();
    expect(printed()).toEqual([`dbfast: kept database ${database.name} of the failed test "creates a user": ${urlOf(database.name)}\n`]);
    expect(await query(database.name, 'SELECT name FROM items ORDER BY name')).toEqual([{ name: 'kept' }, { name: 'seeded' }]);
  });

  it('withTestDatabase drops the database after fn and returns what fn returned', async () => {
    let name = '';
    const result = await withTestDatabase(async (database) => {
      name = database.name;
      return (await query(database.name, 'SELECT name FROM items')).length;
    }, options);
    expect(result).toBe(1);
    expect(await exists(name)).toBe(false);
    expect(printed()).toEqual([]);
  });

  it('withTestDatabase keeps the database when fn throws, says so and rethrows', async () => {
    const failure = new Error('expected 1 to be 2');
    let name = '';
    const run = withTestDatabase(
      async (database) => {
        name = database.name;
        throw failure;
      },
      { ...options, test: 'publishes a post' },
    );
    await expect(run).rejects.toBe(failure);
    expect(await exists(name)).toBe(true);
    expect(printed()).toEqual([`dbfast: kept database ${name} of the failed test "publishes a post": ${urlOf(name)}\n`]);
  });

  it('lets a test process exit by itself once its database is released', async () => {
    const script = `
      const { withTestDatabase } = await import(${JSON.stringify(resolve(REPO_ROOT, 'dist/testing.js'))});
      await withTestDatabase(async (database) => console.log(database.name));
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root,
      env: cliEnv(options.env),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const exit = await new Promise<{ code: number | null; signal: string | null }>((done) => child.on('close', (code, signal) => done({ code, signal })));
    clearTimeout(killer);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(await exists(stdout.trim())).toBe(false);
  });
});
