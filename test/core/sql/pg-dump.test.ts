/**
 * Real `pg_dump` output, made at test time by the machine's pg_dump (15.14 and later start plain
 * dumps with `\restrict KEY` and end them with `\unrestrict KEY`): executed by dbfast into an empty
 * database, it must rebuild the dumped database exactly.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { executeFiles } from '../../../src/core/sql/execute.js';
import { catalogSnapshot } from '../../helpers/catalog.js';
import { freshDatabase } from '../../helpers/database.js';
import { tempRepo } from '../../helpers/repo.js';

const run = promisify(execFile);
const PG_DUMP = ['/usr/lib/postgresql/15/bin/pg_dump', 'pg_dump'];

let source: Awaited<ReturnType<typeof freshDatabase>>;
let target: Awaited<ReturnType<typeof freshDatabase>>;
beforeEach(async () => {
  [source, target] = await Promise.all([freshDatabase(), freshDatabase()]);
});
afterEach(async () => {
  await Promise.all([source.drop(), target.drop()]);
});

/** The dump as a string; a missing pg_dump is a failure, never a reason to skip. */
async function dump(database: string): Promise<string> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('PG')));
  const args = ['-h', '127.0.0.1', '-p', String(inject('serverPort')), '-U', 'postgres', '--no-owner', database];
  for (const path of PG_DUMP) {
    try {
      return (await run(path, args, { env, maxBuffer: 64 << 20 })).stdout;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  throw new Error(`pg_dump not found (tried ${PG_DUMP.join(', ')}): install postgresql-client-15`);
}

describe('a plain pg_dump file', () => {
  it('rebuilds the dumped database, \\restrict lines and all', async () => {
    await source.client.query(`
      CREATE SCHEMA app;
      CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
      CREATE TABLE app.people (id serial PRIMARY KEY, name text NOT NULL, mood app.mood, note text);
      CREATE INDEX people_name ON app.people (name);
      CREATE FUNCTION app.shout(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT upper(t) || '!' $$;
      CREATE VIEW app.loud AS SELECT id, app.shout(name) AS name FROM app.people;
      INSERT INTO app.people (name, mood, note)
        SELECT 'person ' || i, (ARRAY['sad', 'ok', 'happy'])[1 + i % 3]::app.mood, E'tab\\there; \\\\. not the end\\nline ' || i
        FROM generate_series(1, 2000) AS i;`);
    const text = await dump(source.name);
    expect(text).toMatch(/^\\restrict \S+$/m);
    expect(text).toMatch(/^\\unrestrict \S+$/m);
    const root = await tempRepo({ '0_dump/01_app.sql': text });
    const stats = await executeFiles(target.session, [{ relativePath: '0_dump/01_app.sql', absolutePath: join(root, '0_dump/01_app.sql') }], {
      repositoryRoot: root,
    });
    expect(stats.rowsCopied).toBe(2000);
    const [expected, actual] = await Promise.all([catalogSnapshot(source.name), catalogSnapshot(target.name)]);
    expect(actual).toEqual(expected);
    expect(actual.tables).toContainEqual(expect.objectContaining({ name: 'app.people', rows: 2000 }));
  });
});
