/**
 * The executor measured against psql itself: each fixture in test/fixtures/psql-parity runs once
 * with `psql -X -q -v ON_ERROR_STOP=1 -f` and once with executeFiles, into two fresh databases,
 * and the two databases must end up identical (objects, definitions and every table's rows), with
 * the same `\echo` output.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { executeFiles } from '../../../src/core/sql/execute.js';
import { type CatalogSnapshot, catalogSnapshot } from '../../helpers/catalog.js';
import { freshDatabase } from '../../helpers/database.js';
import { findPsql, runPsqlFile } from '../../helpers/psql.js';

const fixturesDir = fileURLToPath(new URL('../../fixtures/psql-parity/', import.meta.url));
const fixtures = readdirSync(fixturesDir)
  .filter((name) => /^\d\d_.*\.sql$/.test(name))
  .sort();

let psql: string;
beforeAll(async () => {
  psql = (await findPsql()).path;
});

/** Runs one fixture both ways; returns both snapshots and what each printed with \echo. */
async function runBothWays(name: string) {
  const [viaPsql, viaDbfast] = await Promise.all([freshDatabase(), freshDatabase()]);
  try {
    const echoes: string[] = [];
    const [psqlRun, dbfastRun] = await Promise.allSettled([
      runPsqlFile(psql, join(fixturesDir, name), viaPsql.name),
      executeFiles(viaDbfast.session, [{ absolutePath: join(fixturesDir, name), relativePath: name }], {
        repositoryRoot: fixturesDir,
        onEcho: (text) => echoes.push(text),
      }),
    ]);
    if (psqlRun.status === 'rejected') {
      throw new Error(`the fixture itself is broken: psql fails on it\n${(psqlRun.reason as { stderr?: string }).stderr}`);
    }
    if (dbfastRun.status === 'rejected') throw dbfastRun.reason;
    return {
      psql: { snapshot: await catalogSnapshot(viaPsql.name), echo: psqlRun.value.stdout },
      dbfast: { snapshot: await catalogSnapshot(viaDbfast.name), echo: echoes.map((line) => `${line}\n`).join('') },
    };
  } finally {
    await Promise.all([viaPsql.drop(), viaDbfast.drop()]);
  }
}

function rowsIn(snapshot: CatalogSnapshot): number {
  return snapshot.tables.reduce((sum, table) => sum + table.rows, 0);
}

describe('executeFiles leaves the same database as psql -f', () => {
  it.each(fixtures)('%s', async (name) => {
    const result = await runBothWays(name);
    // Not vacuous: every fixture leaves tables with rows behind, so a script that did nothing fails.
    expect(result.psql.snapshot.tables.length).toBeGreaterThan(0);
    expect(rowsIn(result.psql.snapshot)).toBeGreaterThan(0);
    expect(result.dbfast.snapshot).toEqual(result.psql.snapshot);
    expect(result.dbfast.echo).toBe(result.psql.echo);
  });
});

describe('the parity fixtures', () => {
  it('run against the real psql client', async () => {
    expect((await findPsql()).version).toMatch(/^psql \(PostgreSQL\) \d+/);
  });

  it('are all there', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(23);
    expect(fixtures[0]).toBe('01_dollar_quotes.sql');
  });

  it('keep their CRLF line endings and byte order mark (no checkout converted them)', () => {
    const crlf = readFileSync(join(fixturesDir, '12_crlf.sql'), 'latin1');
    expect(crlf.split('\r\n').length).toBeGreaterThan(20);
    expect(crlf.replaceAll('\r\n', '')).not.toContain('\n');
    expect(readFileSync(join(fixturesDir, '13_bom.sql')).subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
    expect(readFileSync(join(fixturesDir, '15_no_trailing_semicolon.sql'), 'utf8').endsWith('VALUES (3)')).toBe(true);
  });
});
