/**
 * What a script left behind in a database, as sorted plain strings, so that two databases built
 * from the same SQL can be compared with one `toEqual` (and a readable diff when they differ).
 */
import { testClientConfig } from './database.js';
import pg from 'pg';

export interface TableContents {
  /** `schema.table`, quoted where needed. */
  name: string;
  rows: number;
  /** md5 of the rows' text forms, in sorted order. */
  digest: string;
}

export interface CatalogSnapshot {
  schemas: string[];
  /** Tables, views, sequences, ...: name, relkind and columns with types, NOT NULL and defaults. */
  relations: string[];
  views: string[];
  indexes: string[];
  sequences: string[];
  /** `pg_get_functiondef` (bodies included); aggregates by signature. */
  functions: string[];
  types: string[];
  constraints: string[];
  triggers: string[];
  rules: string[];
  tables: TableContents[];
}

// Temporary schemas are left out: the executor's session may still be open when the snapshot is taken.
const USER_SCHEMA = `n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'`;

const QUERIES: Record<Exclude<keyof CatalogSnapshot, 'tables'>, string> = {
  schemas: `SELECT format('%I', n.nspname) FROM pg_namespace n WHERE ${USER_SCHEMA}`,
  relations: `
    SELECT format('%I.%I %s (%s)', n.nspname, c.relname, c.relkind, (
      SELECT string_agg(format('%I %s%s%s', a.attname, format_type(a.atttypid, a.atttypmod),
               CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
               coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')), ', ' ORDER BY a.attnum)
      FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped))
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${USER_SCHEMA}`,
  views: `
    SELECT format('%I.%I %s: %s', n.nspname, c.relname, CASE WHEN c.relispopulated THEN 'populated' ELSE 'not populated' END,
                  pg_get_viewdef(c.oid))
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v', 'm') AND ${USER_SCHEMA}`,
  indexes: `
    SELECT pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisvalid THEN '' ELSE ' (invalid)' END
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE ${USER_SCHEMA}`,
  sequences: `
    SELECT format('%I.%I last_value %s', s.schemaname, s.sequencename, coalesce(s.last_value::text, 'unset'))
    FROM pg_sequences s JOIN pg_namespace n ON n.nspname = s.schemaname WHERE ${USER_SCHEMA}`,
  functions: `
    SELECT CASE WHEN p.prokind = 'a'
                THEN format('aggregate %I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))
                ELSE pg_get_functiondef(p.oid) END
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE ${USER_SCHEMA}`,
  types: `
    SELECT format('%I.%I %s', n.nspname, t.typname, t.typtype) || CASE t.typtype
             WHEN 'e' THEN ': ' || (SELECT string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid)
             WHEN 'd' THEN ': ' || format_type(t.typbasetype, t.typtypmod) || CASE WHEN t.typnotnull THEN ' not null' ELSE '' END
             ELSE '' END
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE ${USER_SCHEMA} AND t.typcategory <> 'A'
      AND (t.typrelid = 0 OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')`,
  constraints: `
    SELECT format('%I.%s %I %s', n.nspname, CASE WHEN c.conrelid = 0 THEN format_type(c.contypid, NULL) ELSE c.conrelid::regclass::text END,
                  c.conname, pg_get_constraintdef(c.oid))
    FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE ${USER_SCHEMA}`,
  triggers: `
    SELECT pg_get_triggerdef(t.oid)
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE NOT t.tgisinternal AND ${USER_SCHEMA}`,
  rules: `
    SELECT format('%I.%I %s', r.schemaname, r.tablename, r.definition)
    FROM pg_rules r JOIN pg_namespace n ON n.nspname = r.schemaname WHERE ${USER_SCHEMA}`,
};

const TABLES = `
  SELECT format('%I.%I', n.nspname, c.relname) AS name
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE (c.relkind = 'r' OR (c.relkind = 'm' AND c.relispopulated)) AND ${USER_SCHEMA}
  ORDER BY 1`;

/** Reads the snapshot over a new connection to `database` on the test server (or the one at `port`). */
export async function catalogSnapshot(database: string, port?: number): Promise<CatalogSnapshot> {
  const client = new pg.Client(testClientConfig(database, port));
  await client.connect();
  try {
    const snapshot = {} as CatalogSnapshot;
    for (const [key, sql] of Object.entries(QUERIES)) {
      const { rows } = await client.query<{ line: string }>(`SELECT * FROM (${sql}) AS lines (line)`);
      snapshot[key as keyof typeof QUERIES] = rows.map((row) => row.line).sort();
    }
    snapshot.tables = [];
    for (const { name } of (await client.query<{ name: string }>(TABLES)).rows) {
      // ROW(x.*) rather than x: a column named like the alias would win over the whole-row reference.
      const { rows } = await client.query<{ rows: number; digest: string }>(
        `SELECT count(*)::int AS rows, coalesce(md5(string_agg(ROW(x.*)::text, '|' ORDER BY ROW(x.*)::text)), '') AS digest
         FROM ${name} x`,
      );
      snapshot.tables.push({ name, ...rows[0]! });
    }
    return snapshot;
  } finally {
    await client.end();
  }
}

/** catalogSnapshot without dbfast's own bookkeeping (schema `dbfast`), which a deploy writes whatever happens. */
export async function userSnapshot(database: string, port?: number): Promise<CatalogSnapshot> {
  const snapshot = await catalogSnapshot(database, port);
  const kept = Object.fromEntries(Object.entries(snapshot).map(([key, lines]) => [key, key === 'tables' ? lines : (lines as string[]).filter((line) => !/\bdbfast\b/.test(line))]));
  return { ...(kept as unknown as CatalogSnapshot), tables: snapshot.tables.filter((table) => !table.name.startsWith('dbfast.')) };
}
