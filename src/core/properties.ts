/**
 * The properties of a database that its SQL files can set and that CREATE DATABASE ... TEMPLATE
 * does not carry over: settings (ALTER DATABASE SET, ALTER ROLE ... IN DATABASE ... SET), the
 * comment, the owner, the connection limit and the privileges (GRANT ... ON DATABASE). dbfast reads
 * them from the template and makes them again on every clone, so a clone is the database the
 * files built. What dbfast sets itself is left out: IS_TEMPLATE, ALLOW_CONNECTIONS and its metadata.
 */
import { isMetadataComment, METADATA_SETTING } from './pg/metadata.js';
import { quoteIdentifier as ident, quoteLiteral } from './sql/quote.js';

interface AclEntry {
  grantor: string;
  /** null: PUBLIC. */
  grantee: string | null;
  privilege: string;
  grantable: boolean;
}

export interface DatabaseProperties {
  owner: string;
  connection_limit: number;
  comment: string | null;
  /** null: the default privileges (none granted or revoked). */
  acl: AclEntry[] | null;
  /** `name=value` entries per role (null: every role). */
  settings: { role: string | null; config: string[] }[] | null;
}

/** The columns of DatabaseProperties for the pg_database row aliased `d`. */
export const PROPERTIES_COLUMNS = `
  pg_get_userbyid(d.datdba) AS owner, d.datconnlimit AS connection_limit, shobj_description(d.oid, 'pg_database') AS comment,
  CASE WHEN d.datacl IS NOT NULL THEN coalesce((
    SELECT json_agg(json_build_object('grantor', pg_get_userbyid(a.grantor), 'grantee', CASE WHEN a.grantee <> 0 THEN pg_get_userbyid(a.grantee) END,
                                      'privilege', a.privilege_type, 'grantable', a.is_grantable))
      FROM aclexplode(d.datacl) a), '[]') END AS acl,
  (SELECT json_agg(json_build_object('role', CASE WHEN s.setrole <> 0 THEN pg_get_userbyid(s.setrole) END, 'config', s.setconfig))
     FROM pg_db_role_setting s WHERE s.setdatabase = d.oid) AS settings`;

/** The statements that give `database` the properties of the template they were read from. */
export function copyPropertiesSql(database: string, properties: DatabaseProperties): string[] {
  const db = ident(database);
  const statements = [`ALTER DATABASE ${db} OWNER TO ${ident(properties.owner)}`];
  if (properties.connection_limit !== -1) statements.push(`ALTER DATABASE ${db} CONNECTION LIMIT ${properties.connection_limit}`);
  for (const { role, config } of properties.settings ?? []) {
    const target = role === null ? `DATABASE ${db}` : `ROLE ${ident(role)} IN DATABASE ${db}`;
    for (const entry of config) {
      const [name, value] = [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)];
      if (role === null && name === METADATA_SETTING) continue;
      statements.push(`ALTER ${target} SET ${ident(name)} = ${settingValueSql(name, value)}`);
    }
  }
  if (properties.comment !== null && !isMetadataComment(properties.comment)) {
    statements.push(`COMMENT ON DATABASE ${db} IS ${quoteLiteral(properties.comment)}`);
  }
  if (properties.acl) {
    statements.push(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC, ${ident(properties.owner)}`);
    for (const { grantor, grantee, privilege, grantable } of properties.acl) {
      const grant = `GRANT ${privilege} ON DATABASE ${db} TO ${grantee === null ? 'PUBLIC' : ident(grantee)}${grantable ? ' WITH GRANT OPTION' : ''}`;
      // GRANT records the one who runs it (the owner, for a superuser): other grantors grant as themselves, as pg_dump does.
      statements.push(...(grantor === properties.owner ? [grant] : [`SET ROLE ${ident(grantor)}`, grant, 'RESET ROLE']));
    }
  }
  return statements;
}

/** Settings stored with their list elements quoted as identifiers (pg_dump's variable_is_guc_list_quote). */
const LIST_QUOTE = new Set([
  'local_preload_libraries',
  'search_path',
  'session_preload_libraries',
  'shared_preload_libraries',
  'temp_tablespaces',
  'unix_socket_directories',
]);

/**
 * pg_db_role_setting keeps a value as text; one literal gives it back, except for the list
 * settings above, whose elements must each be a literal (`'$user', 'app'`), or `a, b` would
 * become the one element "a, b".
 */
function settingValueSql(name: string, value: string): string {
  if (!LIST_QUOTE.has(name.toLowerCase())) return quoteLiteral(value);
  return splitGucList(value).map(quoteLiteral).join(', ');
}

/** PostgreSQL's SplitGUCList: comma-separated, optionally double-quoted ("" for a quote) elements. */
function splitGucList(value: string): string[] {
  const elements: string[] = [];
  const pattern = /\s*(?:"((?:[^"]|"")*)"|([^,]*?))\s*(?:,|$)/y;
  while (pattern.lastIndex < value.length) {
    const match = pattern.exec(value);
    if (!match) break;
    elements.push(match[1] !== undefined ? match[1].replace(/""/g, '"') : match[2]!);
  }
  return elements.length > 0 ? elements : [''];
}
