/**
 * Roles are shared by the whole server, so the roles a build creates outlive it: the previous
 * template and its clones keep owning objects of them while the next build runs, and dbfast must
 * keep that template until the new one succeeded. dbfast records the roles its builds of a
 * template created (pg_roles before and after), explains the errors this leads to, and on request
 * (`recreate`) drops the previous template, its clones and those roles before building.
 */
import type pg from 'pg';
import { type CloneInfo, listClones } from './clone.js';
import { isDerivedName } from './names.js';
import { dropDatabase } from './pg/databases.js';
import { DbfastError } from './errors.js';
import { plural } from './plural.js';
import { quoteIdentifier as ident } from './sql/quote.js';

export async function roleNames(admin: pg.Client): Promise<Set<string>> {
  const { rows } = await admin.query<{ rolname: string }>('SELECT rolname FROM pg_roles');
  return new Set(rows.map((row) => row.rolname));
}

/**
 * The roles builds of a template created: those that appeared during this build and that the built
 * database uses (own objects, hold privileges, own it or have settings in it), and those recorded by
 * earlier builds that still exist (a file that creates a role only when missing keeps it recorded).
 * Requiring a use keeps out a role another session created while the build ran, which --recreate
 * would otherwise drop.
 */
export function builtRoles(before: Set<string>, after: Set<string>, used: Set<string>, recorded: string[] = []): string[] {
  return [...after].filter((role) => (!before.has(role) && used.has(role)) || recorded.includes(role)).sort();
}

/** The roles `database` depends on: owners of its objects or of itself, holders of its privileges, roles with settings in it. */
export async function rolesUsedBy(admin: pg.Client, database: string): Promise<Set<string>> {
  const { rows } = await admin.query<{ rolname: string }>(
    `WITH db AS (SELECT oid FROM pg_database WHERE datname = $1)
     SELECT r.rolname FROM pg_shdepend d JOIN pg_roles r ON r.oid = d.refobjid, db
      WHERE d.refclassid = 'pg_authid'::regclass
        AND (d.dbid = db.oid OR (d.classid = 'pg_database'::regclass AND d.objid = db.oid))
     UNION
     SELECT r.rolname FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole, db WHERE s.setdatabase = db.oid`,
    [database],
  );
  return new Set(rows.map((row) => row.rolname));
}

const IDEMPOTENT = 'DO $$ BEGIN CREATE ROLE ...; EXCEPTION WHEN duplicate_object THEN NULL; END $$';
const DEPENDENT_OBJECTS_STILL_EXIST = '2BP01';
const DUPLICATE_OBJECT = '42710';

export interface PreviousBuild {
  template: string;
  /** The roles recorded in the previous template's metadata. */
  roles: string[];
}

/** Listed only on the paths that need them (an error to explain, --recreate): listing sizes every clone. */
async function clonesOf(admin: pg.Client, template: string): Promise<CloneInfo[]> {
  return (await listClones(admin)).filter((clone) => clone.template === template);
}

/**
 * A build's error about a role a previous build left behind, said in one line with what to do;
 * any other error unchanged. The location, DETAIL and CONTEXT stay.
 */
export async function explainRoleError(admin: pg.Client, error: unknown, previous: PreviousBuild): Promise<unknown> {
  if (!(error instanceof DbfastError) || error.code !== 'SQL_FAILED') return error;
  const cause = error.cause as { code?: string; message?: string } | undefined;
  const idempotent = (role: string) => `create ${role} only when missing (${IDEMPOTENT.replace('...', ident(role))})`;
  const hint = (role: string) =>
    `roles are shared by the whole server: ${idempotent(role)}, or rebuild with --recreate (drops the previous template, its clones and the roles its builds created first)`;
  const dropped = cause?.code === DEPENDENT_OBJECTS_STILL_EXIST && /^role "(.+)" cannot be dropped because/.exec(cause.message ?? '');
  if (dropped) {
    const role = dropped[1]!;
    const owners = await dependentDatabases(admin, [role]);
    const { template } = previous;
    const clones = await clonesOf(admin, template);
    // Its pool spares and layer checkpoints are the template's own copies.
    const templateOwns = (database: string | null) => database === template || (database !== null && isDerivedName(database, template));
    const hasTemplate = owners.some((owner) => templateOwns(owner.database));
    const cloneCount = clones.filter((clone) => owners.some((owner) => owner.database === clone.name)).length;
    const ours = new Set(clones.map((clone) => clone.name));
    const others = [
      ...new Set(owners.map((owner) => owner.database ?? '(shared objects)').filter((database) => !ours.has(database) && !templateOwns(database))),
    ];
    const parts = [
      hasTemplate ? `the previous template ${template}` : '',
      cloneCount === 0 ? '' : `${hasTemplate ? 'its ' : ''}${plural(cloneCount, 'clone')}${hasTemplate ? '' : ` of ${template}`}`,
      others.length === 0 ? '' : `${plural(others.length, 'database').replace(/^\d+ /, '')} ${others.join(', ')}`,
    ].filter(Boolean);
    if (parts.length === 0) return error;
    const who = parts.length === 1 ? parts[0] : `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)}`;
    const owns = parts.length === 1 && (hasTemplate || cloneCount === 1 || others.length === 1) ? 'owns' : 'own';
    return relabel(error, `role "${role}" cannot be dropped: ${who} ${owns} objects of it`, hint(role));
  }
  const duplicate = cause?.code === DUPLICATE_OBJECT && /^role "(.+)" already exists$/.exec(cause.message ?? '');
  if (duplicate) {
    const role = duplicate[1]!;
    // --recreate drops only the roles dbfast saw a build create.
    if (previous.roles.includes(role)) {
      return relabel(error, `role "${role}" already exists: a previous build of ${previous.template} created it`, hint(role));
    }
    return relabel(error, `role "${role}" already exists: roles belong to the whole server, not to the database being built`, `${idempotent(role)}, or drop it first`);
  }
  return error;
}

function relabel(error: DbfastError, message: string, hint: string): DbfastError {
  const { file, line, column, detail, cause } = error;
  return new DbfastError(error.code, message, { file, line, column, detail, hint, cause });
}

interface Dependency {
  role: string;
  /** null: a shared object (a database's owner or privileges, a tablespace). */
  database: string | null;
  /** For shared objects that are databases: which one. */
  sharedDatabase: string | null;
}

/** Where objects depend on `roles`: pg_shdepend across every database of the server. */
async function dependentDatabases(admin: pg.Client, roles: string[]): Promise<{ role: string; database: string | null }[]> {
  const { rows } = await admin.query<Dependency>(
    `SELECT DISTINCT r.rolname AS role, d.datname AS database,
            CASE WHEN s.classid = 'pg_database'::regclass THEN (SELECT datname FROM pg_database WHERE oid = s.objid) END AS "sharedDatabase"
       FROM pg_shdepend s JOIN pg_roles r ON r.oid = s.refobjid
       LEFT JOIN pg_database d ON d.oid = s.dbid
      WHERE s.refclassid = 'pg_authid'::regclass AND s.deptype <> 'p' AND r.rolname = ANY($1)`,
    [roles],
  );
  return rows.map((row) => ({ role: row.role, database: row.database ?? row.sharedDatabase }));
}

/**
 * `recreate`: drops the previous template, its clones and the roles its builds created, so the
 * files can create them again. Refuses, before dropping anything, when one of those roles still
 * has objects or privileges anywhere else on the server.
 */
export async function dropPreviousBuild(admin: pg.Client, previous: PreviousBuild): Promise<void> {
  const clones = await clonesOf(admin, previous.template);
  const { rows } = await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [previous.template]);
  const derived = rows.map((row) => row.datname).filter((name) => isDerivedName(name, previous.template));
  const ours = new Set([previous.template, ...clones.map((clone) => clone.name), ...derived]);
  const existing = await roleNames(admin);
  const roles = previous.roles.filter((role) => existing.has(role));
  const elsewhere = (await dependentDatabases(admin, roles)).filter((owner) => owner.database === null || !ours.has(owner.database));
  if (elsewhere.length > 0) {
    const { role, database } = elsewhere[0]!;
    throw new DbfastError('USAGE', `cannot recreate ${previous.template}: role "${role}", created by its builds, also has objects or privileges ${database ? `in database ${database}` : 'on the server'}`, {
      hint: `dbfast drops only what its builds made: drop or reassign those objects (REASSIGN OWNED BY ${ident(role)} TO ...; DROP OWNED BY ${ident(role)}) or rebuild without --recreate`,
    });
  }
  for (const name of [...clones.map((clone) => clone.name), ...derived]) await dropDatabase(admin, name);
  await dropDatabase(admin, previous.template);
  for (const role of roles) await admin.query(`DROP ROLE IF EXISTS ${ident(role)}`);
}
