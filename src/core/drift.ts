/**
 * Schema drift: two databases described object by object from the catalog, then compared. Each
 * object is keyed by kind and qualified name (`column public.users.email`) with a normalised
 * description, so column order after ALTER TABLE ADD, OIDs, ownership and GRANTs never count;
 * extension members and dbfast's own bookkeeping schema are left out, as pg_dump leaves them out.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import { withTemplateClone } from './backup/load.js';
import type { DbfastConfig } from './config/index.js';
import { writeFileAtomic } from './files.js';
import { withClient } from './pg/client.js';
import { configuredTarget, type ServerTarget } from './pg/target.js';
import { withRolledBack } from './pg/transaction.js';
import { Project } from './project.js';
import { remoteNamed } from './remote.js';

/** Object key (`table public.users`, `index public.users_email_key`) to its normalised description. */
export type SchemaDescription = Map<string, string>;

export interface SchemaDifference {
  object: string;
  /** `missing`: in the expected schema only; `extra`: in the actual one only; `differs`: in both, described differently. */
  change: 'missing' | 'extra' | 'differs';
  expected?: string;
  actual?: string;
}

/** The schemas of the application (pg_namespace `n`): not the system's, nor dbfast's bookkeeping. */
export const USER_SCHEMA = `n.nspname NOT IN ('pg_catalog', 'information_schema', 'dbfast') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'`;
/** Neither an extension's member nor owned by another object (a range type's constructor functions). */
const NOT_EXTENSION_MEMBER = (catalog: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '${catalog}'::regclass AND e.objid = ${oid} AND e.deptype IN ('e', 'i'))`;

/** One query per kind, each returning (key, description). */
const QUERIES: string[] = [
  `SELECT 'schema ' || quote_ident(n.nspname), '' FROM pg_namespace n WHERE ${USER_SCHEMA} AND ${NOT_EXTENSION_MEMBER('pg_namespace', 'n.oid')}`,
  `SELECT 'extension ' || quote_ident(x.extname), 'in ' || quote_ident(n.nspname) FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace
   WHERE x.extname <> 'plpgsql'`,
  `SELECT CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view ' WHEN 'S' THEN 'sequence ' WHEN 'f' THEN 'foreign table ' ELSE 'table ' END
          || format('%I.%I', n.nspname, c.relname),
          CASE c.relkind
            WHEN 'p' THEN 'partitioned by ' || pg_get_partkeydef(c.oid)
            WHEN 'v' THEN pg_get_viewdef(c.oid)
            WHEN 'm' THEN pg_get_viewdef(c.oid)
            WHEN 'S' THEN (SELECT format('%s start %s increment %s min %s max %s%s', format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
                                        CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END) FROM pg_sequence s WHERE s.seqrelid = c.oid)
            ELSE CASE c.relpersistence WHEN 'u' THEN 'unlogged' ELSE '' END END
          || CASE WHEN c.relispartition THEN ' partition of ' || (SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = c.oid) || ' ' || pg_get_expr(c.relpartbound, c.oid) ELSE '' END
   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND ${USER_SCHEMA} AND ${NOT_EXTENSION_MEMBER('pg_class', 'c.oid')}`,
  `SELECT format('column %I.%I.%I', n.nspname, c.relname, a.attname),
          format_type(a.atttypid, a.atttypmod)
          || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
          || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
          || CASE WHEN a.attgenerated <> '' THEN ' generated ' || pg_get_expr(d.adbin, d.adrelid)
                  WHEN d.adbin IS NOT NULL AND a.attidentity = '' THEN ' default ' || pg_get_expr(d.adbin, d.adrelid) ELSE '' END
          || CASE WHEN a.attcollation <> 0 AND a.attcollation <> (SELECT t.typcollation FROM pg_type t WHERE t.oid = a.atttypid)
                  THEN ' collate ' || (SELECT quote_ident(co.collname) FROM pg_collation co WHERE co.oid = a.attcollation) ELSE '' END
   FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND ${USER_SCHEMA} AND ${NOT_EXTENSION_MEMBER('pg_class', 'c.oid')}`,
  `SELECT format('constraint %I.%s.%I', n.nspname, CASE WHEN c.conrelid = 0 THEN quote_ident(t.typname) ELSE quote_ident(r.relname) END, c.conname),
          pg_get_constraintdef(c.oid)
   FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
   LEFT JOIN pg_class r ON r.oid = c.conrelid LEFT JOIN pg_type t ON t.oid = c.contypid
   -- PostgreSQL 18 also records NOT NULL as constraints ('n'): columns say it for every version.
   WHERE c.contype <> 'n' AND ${USER_SCHEMA} AND ${NOT_EXTENSION_MEMBER('pg_constraint', 'c.oid')}`,
  `SELECT format('index %I.%I', n.nspname, c.relname), pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisvalid THEN '' ELSE ' (invalid)' END
   FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE ${USER_SCHEMA} AND ${NOT_EXTENSION_MEMBER('pg_class', 'c.oid')}
     AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x'))`,
  `SELECT format('%s %I.%I(%s)', CASE p.prokind WHEN 'a' THEN 'aggregate' WHEN 'p' THEN 'procedure' ELSE 'function' END,
                 n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)),
          CASE WHEN p.prokind = 'a' THEN 'returns ' || format_type(p.prorettype, NULL) ELSE pg_get_functiondef(p.oid) END
   FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE ${USER_SCHEMA} AND ${NOT_EXTENSION_MEMBER('pg_proc', 'p.oid')}`,
  `SELECT format('trigger %I.%I.%I', n.nspname, c.relname, t.tgname), pg_get_triggerdef(t.oid)
   FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE NOT t.tgisinternal AND ${USER_SCHEMA}`,
  `SELECT format('type %I.%I', n.nspname, t.typname),
          CASE t.typtype
            WHEN 'e' THEN 'enum (' || (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid) || ')'
            WHEN 'd' THEN 'domain ' || format_type(t.typbasetype, t.typtypmod) || CASE WHEN t.typnotnull THEN ' not null' ELSE '' END
                          || coalesce(' default ' || pg_get_expr(t.typdefaultbin, 0), '')
            WHEN 'r' THEN 'range'
            ELSE 'composite (' || (SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.attnum)
                                    FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) || ')' END
   FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
   WHERE ${USER_SCHEMA} AND ${NOT_EXTENSION_MEMBER('pg_type', 't.oid')} AND t.typtype IN ('e', 'd', 'r', 'c')
     AND (t.typrelid = 0 OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')`,
  `SELECT format('rule %I.%I.%I', r.schemaname, r.tablename, r.rulename), r.definition
   FROM pg_rules r JOIN pg_namespace n ON n.nspname = r.schemaname WHERE ${USER_SCHEMA}`,
  `SELECT format('policy %I.%I.%I', p.schemaname, p.tablename, p.policyname),
          format('%s for %s to %s using %s check %s', p.permissive, p.cmd, p.roles::text, coalesce(p.qual, '-'), coalesce(p.with_check, '-'))
   FROM pg_policies p JOIN pg_namespace n ON n.nspname = p.schemaname WHERE ${USER_SCHEMA}`,
];

/**
 * The schema of the database `client` is connected to, as seen from the transaction it is in, if
 * any. With an empty search_path every name the catalog functions print is schema-qualified,
 * whoever the session's user is.
 */
export async function describeSchema(client: pg.Client): Promise<SchemaDescription> {
  const description: SchemaDescription = new Map();
  await withRolledBack(client, async () => {
    await client.query("SET LOCAL search_path = ''");
    for (const sql of QUERIES) {
      const { rows } = await client.query<[string, string]>({ text: sql, rowMode: 'array' });
      for (const [key, value] of rows) description.set(key, value ?? '');
    }
  });
  return description;
}

/** What `actual` lacks, has in addition, or has otherwise than `expected`, sorted by object. */
export function compareSchemas(expected: SchemaDescription, actual: SchemaDescription): SchemaDifference[] {
  const differences: SchemaDifference[] = [];
  for (const [object, description] of expected) {
    const found = actual.get(object);
    if (found === undefined) differences.push({ object, change: 'missing', expected: description });
    else if (found !== description) differences.push({ object, change: 'differs', expected: description, actual: found });
  }
  for (const [object, description] of actual) {
    if (!expected.has(object)) differences.push({ object, change: 'extra', actual: description });
  }
  return differences.sort((a, b) => a.object.localeCompare(b.object));
}

/** A description on one line, cut at 200 characters. */
export function oneLine(text: string | undefined): string {
  const flat = (text ?? '').replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 197)}...` : flat;
}

/** Differences as diff lines: `- ` only expected, `+ ` only actual, `~ ` changed (then its two descriptions). */
export function diffLines(differences: SchemaDifference[]): string[] {
  return differences.flatMap(({ object, change, expected, actual }) => {
    if (change === 'missing') return [`- ${object}: ${oneLine(expected)}`];
    if (change === 'extra') return [`+ ${object}: ${oneLine(actual)}`];
    return [`~ ${object}`, `    - ${oneLine(expected)}`, `    + ${oneLine(actual)}`];
  });
}

export interface RemoteDrift {
  remote: string;
  /** The remote's database, as compared. */
  database: string;
  environment?: string;
  /** The environment's template, rebuilt first when its files changed. */
  template: string;
  differences: SchemaDifference[];
}

/**
 * A template's schema. The template refuses connections, so a clone of it is described (a copy of
 * the whole template: the slow part of a small deploy); a template never changes under one
 * fingerprint, so the description is kept in the state folder for that fingerprint and server version.
 */
export async function templateSchema(local: ServerTarget, template: { name: string; fingerprint: string; builtAt: string }, stateDir: string): Promise<SchemaDescription> {
  const version = await withClient(local, async (client) => (await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]!.v);
  // A rebuild under the same fingerprint (an included file changed) has another builtAt.
  const key = { format: DESCRIPTION_FORMAT, fingerprint: template.fingerprint, builtAt: template.builtAt, serverVersion: version };
  const path = join(stateDir, 'schemas', `${template.name}.json`);
  const cached = await readFile(path, 'utf8').then((text) => JSON.parse(text) as CachedSchema, () => null);
  if (cached && Object.entries(key).every(([name, value]) => cached[name as keyof typeof key] === value)) return new Map(cached.objects);
  const schema = await withTemplateClone(local, template.name, (clone) => withClient(local, describeSchema, clone));
  const entry: CachedSchema = { ...key, objects: [...schema] };
  await writeFileAtomic(path, JSON.stringify(entry));
  return schema;
}

/** Changes whenever QUERIES describe objects otherwise, so that no cached description outlives them. */
const DESCRIPTION_FORMAT = 1;

interface CachedSchema {
  format: number;
  fingerprint: string;
  builtAt: string;
  serverVersion: string;
  objects: [string, string][];
}

/**
 * Compares a remote's database with its environment's template (the remote's `environment`
 * unless another is named). The template refuses connections, so a clone of it is described and
 * dropped.
 */
export async function remoteDrift(
  config: DbfastConfig,
  remoteName: string,
  options: { environment?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<RemoteDrift> {
  const env = options.env ?? process.env;
  const remote = remoteNamed(config, remoteName);
  const project = new Project(config, options.environment ?? remote.environment, env);
  const { template } = await project.build();
  const local = await project.server();
  const expected = await templateSchema(local, template, config.stateDir);
  const target = await configuredTarget(remote, config, env);
  const actual = await withClient(target, describeSchema);
  return {
    remote: remote.name,
    database: target.maintenanceDatabase,
    ...(project.environment.name ? { environment: project.environment.name } : {}),
    template: template.name,
    differences: compareSchemas(expected, actual),
  };
}
