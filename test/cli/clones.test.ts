import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliProject, cliProject, uniqueName } from '../helpers/cli.js';
import { query, testClientConfig } from '../helpers/database.js';

let project: CliProject;

beforeAll(async () => {
  project = await cliProject({ 'db/0_schema/01_tables.sql': 'CREATE TABLE items (id int);' });
});

afterAll(async () => {
  await project.remove();
});

async function seed(...args: string[]): Promise<string> {
  const result = await project.run(['seed', '--json', ...args]);
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout).database;
}

async function exists(name: string): Promise<boolean> {
  return (await query('postgres', `SELECT 1 FROM pg_database WHERE datname = '${name}'`)).length === 1;
}

interface Listed {
  name: string;
  template: string;
  fingerprint: string;
  createdAt: string;
  sizeBytes: number;
}

async function listMine(): Promise<Listed[]> {
  const result = await project.run(['list', '--json']);
  expect(result.code).toBe(0);
  const all = JSON.parse(result.stdout) as Listed[];
  return all.filter((clone) => clone.template === project.templateName);
}

describe('dbfast list and drop', () => {
  it('list --json shows the clones with their template, fingerprint, creation time and size', async () => {
    const named = uniqueName('listed');
    const generated = await seed();
    await seed('-o', named);
    const clones = await listMine();
    expect(clones.map((clone) => clone.name).sort()).toEqual([generated, named].sort());
    for (const clone of clones) {
      expect(clone.fingerprint).toMatch(/^[0-9a-f]{64}$/);
      expect(Date.parse(clone.createdAt)).toBeGreaterThan(Date.now() - 600_000);
      expect(clone.sizeBytes).toBeGreaterThan(0);
    }

    const plain = await project.run(['list']);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(new RegExp(`^${named}\\t${project.templateName}\\t\\S+\\t[\\d.]+ \\w?B$`, 'm'));
  });

  it('drop removes a clone even while a client is connected to it', async () => {
    const name = await seed();
    const client = new pg.Client(testClientConfig(name));
    client.on('error', () => {});
    await client.connect();
    try {
      const result = await project.run(['drop', name]);
      expect(result.code).toBe(0);
      expect(result.stdout).toBe('');
      expect(result.errLines).toEqual([`dropped ${name}`]);
      expect(await exists(name)).toBe(false);
      expect((await listMine()).map((clone) => clone.name)).not.toContain(name);
    } finally {
      await client.end().catch(() => {});
    }
  });

  it('drop takes several names', async () => {
    const names = [await seed(), await seed()];
    const result = await project.run(['drop', ...names]);
    expect(result.code).toBe(0);
    expect(result.errLines).toEqual(names.map((name) => `dropped ${name}`));
    for (const name of names) expect(await exists(name)).toBe(false);
  });

  it('drop refuses a database dbfast did not create (exit 2), and drops nothing of the list', async () => {
    const foreign = uniqueName('foreign');
    await query('postgres', `CREATE DATABASE ${foreign}`);
    const clone = await seed();
    try {
      const result = await project.run(['drop', clone, foreign]);
      expect(result.code).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.errLines).toEqual([`error: not a dbfast clone: ${foreign}`, '  hint: dbfast list shows the databases it created']);
      expect(await exists(foreign)).toBe(true);
      expect(await exists(clone)).toBe(true);
    } finally {
      await query('postgres', `DROP DATABASE IF EXISTS ${foreign} WITH (FORCE)`);
    }
  });

  it('clean --older-than keeps a clone made seconds ago; --all drops it; both together are refused (exit 2)', async () => {
    const fresh = await seed();
    const contradiction = await project.run(['clean', '--older-than', '1h', '--all']);
    expect(contradiction.code).toBe(2);
    expect(contradiction.stdout).toBe('');
    expect(contradiction.errLines).toEqual([
      'error: --all and --older-than contradict each other',
      '  hint: --all drops every clone of this template whatever its age; use one of them',
    ]);
    expect(await exists(fresh)).toBe(true);
    // Refused before the server is reached: the flags alone are wrong.
    const offline = await project.run(['clean', '--all', '--older-than', '1h'], { env: { DBFAST_DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/postgres' } });
    expect(offline.errLines).toEqual(contradiction.errLines);

    const old = await project.run(['clean', '--older-than', '1h']);
    expect(old.code).toBe(0);
    expect(old.errLines).toEqual(['nothing to clean']);
    expect(await exists(fresh)).toBe(true);

    const all = await project.run(['clean', '--all']);
    expect(all.code).toBe(0);
    expect(all.errLines).toContain(`dropped ${fresh}`);
    expect(await listMine()).toEqual([]);
  });

  it('clean refuses a --keep-last that is not a whole number, and drops nothing', async () => {
    const kept = await seed();
    for (const value of ['abc', '-1', '1.5']) {
      const result = await project.run(['clean', '--keep-last', value]);
      expect(result.code, value).toBe(2);
      expect(result.errLines[0]).toContain('expected a whole number');
    }
    expect(await exists(kept)).toBe(true);
  });

  it('drop says which names are no database at all, apart from databases dbfast did not create (exit 2)', async () => {
    const clone = await seed();
    const missing = uniqueName('nosuchdb');
    const single = await project.run(['drop', missing]);
    expect(single.code).toBe(2);
    expect(single.stdout).toBe('');
    expect(single.errLines).toEqual([`error: database "${missing}" does not exist`, '  hint: dbfast list shows the databases it created']);

    const mixed = await project.run(['drop', clone, missing, 'postgres', `${missing}_2`]);
    expect(mixed.code).toBe(2);
    expect(mixed.errLines[0]).toBe(`error: databases "${missing}", "${missing}_2" do not exist; not a dbfast clone: postgres`);
    expect(await exists(clone)).toBe(true);
  });

  it('drop refuses the template itself', async () => {
    await seed();
    const result = await project.run(['drop', project.templateName]);
    expect(result.code).toBe(2);
    expect(result.errLines[0]).toBe(`error: not a dbfast clone: ${project.templateName}`);
    expect(await exists(project.templateName)).toBe(true);
  });
});
