/**
 * The executor measured against psql itself: each fixture in test/fixtures/psql-parity runs once
 * with `psql -X -q -v ON_ERROR_STOP=1 -f` and once with executeFiles, into two fresh databases,
 * and the two databases must end up identical (objects, definitions and every table's rows), with
 * the same `\echo` output and as many errors reported (psql goes on after errors while a script
 * has ON_ERROR_STOP off). A fixture folder is a repository: psql runs each of its files in a
 * process of its own (a new connection per file), dbfast runs them all in one build.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { executeFiles } from '../../../src/core/sql/execute.js';
import { type CatalogSnapshot, catalogSnapshot } from '../../helpers/catalog.js';
import { freshDatabase } from '../../helpers/database.js';
import { findPsql, runPsqlFile } from '../../helpers/psql.js';

const fixturesDir = fileURLToPath(new URL('../../fixtures/psql-parity/', import.meta.url));
const fixtures = readdirSync(fixturesDir)
  .filter((name) => /^\d\d_.*\.sql$/.test(name) || /^\d\d_/.test(name))
  .sort();

/** The fixture's files in execution order: itself, or the files of a fixture folder. */
function fixtureFiles(name: string): { absolutePath: string; relativePath: string }[] {
  const path = join(fixturesDir, name);
  if (!statSync(path).isDirectory()) return [{ absolutePath: path, relativePath: name }];
  return readdirSync(path)
    .sort()
    .map((file) => ({ absolutePath: join(path, file), relativePath: `${name}/${file}` }));
}

let psql: string;
beforeAll(async () => {
  psql = (await findPsql()).path;
});

/** Runs one fixture both ways; returns both snapshots and what each printed with \echo. */
async function runBothWays(name: string) {
  const [viaPsql, viaDbfast] = await Promise.all([freshDatabase(), freshDatabase()]);
  try {
    const echoes: string[] = [];
    const warnings: string[] = [];
    const files = fixtureFiles(name);
    const [psqlRun, dbfastRun] = await Promise.allSettled([
      (async () => {
        const outputs = [];
        for (const file of files) outputs.push(await runPsqlFile(psql, file.absolutePath, viaPsql.name));
        return { stdout: outputs.map((output) => output.stdout).join(''), stderr: outputs.map((output) => output.stderr).join('') };
      })(),
      executeFiles(viaDbfast.session, files, {
        repositoryRoot: fixturesDir,
        onEcho: (text) => echoes.push(text),
        // Only failed statements count: psql says nothing of a CREATE DATABASE that succeeds.
        onWarning: (warning) => warning.code === 'SQL_FAILED' && warnings.push(warning.located),
      }),
    ]);
    if (psqlRun.status === 'rejected') {
      throw new Error(`the fixture itself is broken: psql fails on it\n${(psqlRun.reason as { stderr?: string }).stderr}`);
    }
    if (dbfastRun.status === 'rejected') throw dbfastRun.reason;
    return {
      psql: {
        snapshot: await catalogSnapshot(viaPsql.name),
        echo: psqlRun.value.stdout,
        errors: psqlRun.value.stderr.split('\n').filter((line) => / ERROR: /.test(line)).length,
      },
      dbfast: {
        snapshot: await catalogSnapshot(viaDbfast.name),
        echo: echoes.map((line) => `${line}\n`).join(''),
        errors: warnings.length,
        warnings,
      },
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
    expect(result.dbfast.errors).toBe(result.psql.errors);
  });

  it('reports each failing statement of 30_on_error_stop_off.sql where psql does', async () => {
    const { psql: viaPsql, dbfast } = await runBothWays('30_on_error_stop_off.sql');
    expect(viaPsql.errors).toBe(6);
    expect(dbfast.warnings.map((warning) => warning.replace(/: .*/s, ''))).toEqual(
      ['6:1', '8:1', '9:1', '12:13', '13:1', '16:1'].map((at) => `30_on_error_stop_off.sql:${at}`),
    );
    const items = viaPsql.snapshot.tables.find((table) => table.name === 'public.items');
    expect(items?.rows).toBe(4);
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
