/**
 * What dbfast knows about the databases it made (templates and clones) lives on the server, in
 * the database-level setting `dbfast.metadata` (pg_db_role_setting), so that the database comment
 * stays the user's. PostgreSQL lets only superusers, and on 15+ roles granted
 * `SET ON PARAMETER dbfast.metadata`, store a setting it does not know: for other roles dbfast
 * keeps its metadata in the comment, as format 1 always did (and reads it back from there).
 */
import type pg from 'pg';
import { quoteIdentifier as ident, quoteLiteral } from '../sql/quote.js';

export const METADATA_SETTING = 'dbfast.metadata';

export type MetadataPlace = 'setting' | 'comment';

/** The raw `metadata` (setting) and `comment` columns of the pg_database row aliased `d`. */
export const METADATA_COLUMNS = `
  (SELECT substr(c, ${METADATA_SETTING.length + 2}) FROM pg_db_role_setting s, unnest(s.setconfig) c
    WHERE s.setdatabase = d.oid AND s.setrole = 0 AND starts_with(c, '${METADATA_SETTING}=')) AS metadata,
  shobj_description(d.oid, 'pg_database') AS comment`;

export interface MetadataColumns {
  metadata: string | null;
  comment: string | null;
}

/** What dbfast stored on a database, or null for databases dbfast did not create. */
export function parseMetadata<T extends { kind: string }>(row: MetadataColumns, kind: T['kind']): T | null {
  const text = row.metadata ?? row.comment;
  if (!text?.startsWith('{"dbfast"')) return null;
  try {
    const metadata = JSON.parse(text).dbfast as T;
    return metadata?.kind === kind ? metadata : null;
  } catch {
    return null;
  }
}

export function metadataPlace(row: MetadataColumns): MetadataPlace {
  return row.metadata === null ? 'comment' : 'setting';
}

/** A comment that is dbfast's metadata, not the user's (templates built by unprivileged roles or by format 1). */
export function isMetadataComment(comment: string | null): boolean {
  return comment?.startsWith('{"dbfast"') ?? false;
}

export function writeMetadataSql(database: string, metadata: { kind: string }, place: MetadataPlace): string {
  const text = quoteLiteral(JSON.stringify({ dbfast: metadata }));
  return place === 'setting'
    ? `ALTER DATABASE ${ident(database)} SET ${ident(METADATA_SETTING)} = ${text}`
    : `COMMENT ON DATABASE ${ident(database)} IS ${text}`;
}

/** Where this connection's role may keep metadata. */
export async function writableMetadataPlace(admin: pg.Client): Promise<MetadataPlace> {
  const { rows } = await admin.query<{ rolsuper: boolean; acl: boolean }>(
    `SELECT rolsuper, current_setting('server_version_num')::int >= 150000 AS acl FROM pg_roles WHERE rolname = current_user`,
  );
  if (rows[0]?.rolsuper) return 'setting';
  if (!rows[0]?.acl) return 'comment';
  const granted = await admin.query<{ ok: boolean }>(`SELECT has_parameter_privilege('${METADATA_SETTING}', 'SET') AS ok`);
  return granted.rows[0]!.ok ? 'setting' : 'comment';
}
