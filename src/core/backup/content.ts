/**
 * Does a restored database hold what the archive held? Its tables, views, sequences and routines
 * are counted as pg_dump's table of contents counts them (extension members left out, as pg_dump
 * leaves them out), and every table's rows are counted.
 */
import type pg from 'pg';
import { quoteIdentifier as ident } from '../sql/quote.js';
import type { ObjectCounts, TableRows } from './store.js';

const COUNTS_SQL = `
WITH relations AS (
  SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
), routines AS (
  SELECT p.oid FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
    -- Extension members, and what a type owns (a range type's constructors): pg_dump lists neither.
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype IN ('e', 'i'))
)
SELECT count(*) FILTER (WHERE relkind IN ('r', 'p', 'f'))::int AS tables,
       count(*) FILTER (WHERE relkind = 'v')::int AS views,
       count(*) FILTER (WHERE relkind = 'm')::int AS "materializedViews",
       count(*) FILTER (WHERE relkind = 'S')::int AS sequences,
       (SELECT count(*) FROM routines)::int AS routines
FROM relations`;

const LABELS: Record<keyof ObjectCounts, string> = {
  tables: 'tables',
  views: 'views',
  materializedViews: 'materialized views',
  sequences: 'sequences',
  routines: 'functions',
};

/**
 * What differs between the database `client` is connected to and the archive's counts; empty when
 * nothing does. `objects` compares the counts of each kind, `rows` every table's rows (a scan each).
 */
export async function contentProblems(
  client: pg.Client,
  expected: { counts: ObjectCounts; rows: TableRows[] },
  check: { objects: boolean; rows: boolean },
): Promise<string[]> {
  const problems: string[] = [];
  if (check.objects) {
    const counts = (await client.query<ObjectCounts>(COUNTS_SQL)).rows[0]!;
    for (const key of Object.keys(LABELS) as (keyof ObjectCounts)[]) {
      if (counts[key] !== expected.counts[key]) problems.push(`${counts[key]} ${LABELS[key]} where the backup has ${expected.counts[key]}`);
    }
  }
  // One query per 100 tables: each count is a scan, and one statement keeps the round trips few.
  for (let start = 0; check.rows && start < expected.rows.length; start += 100) {
    const batch = expected.rows.slice(start, start + 100);
    const sql = batch.map((entry, index) => `(SELECT count(*) FROM ONLY ${ident(entry.schema)}.${ident(entry.table)})::float8 AS c${index}`).join(', ');
    const found = await client.query<Record<string, number>>(`SELECT ${sql}`).then(
      (result) => result.rows[0]!,
      (error: Error) => {
        problems.push(`the tables cannot be counted: ${error.message}`);
        return null;
      },
    );
    if (!found) break;
    batch.forEach((entry, index) => {
      const rows = found[`c${index}`];
      if (rows !== entry.rows) problems.push(`${entry.schema}.${entry.table} has ${rows} rows where the backup has ${entry.rows}`);
    });
  }
  return problems;
}
