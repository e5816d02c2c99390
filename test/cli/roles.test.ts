import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type CliProject, cliProject, withoutProgress } from '../helpers/cli.js';
import { query } from '../helpers/database.js';

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A project whose one file creates `role` with `create`; the role is dropped after its databases. */
async function rolesProject(create: (role: string) => string) {
  const role = `role_${randomBytes(4).toString('hex')}`;
  const file = (version: number) => `${create(role)}\nCREATE TABLE t${version} (); ALTER TABLE t${version} OWNER TO ${role};\n`;
  const project = await cliProject({ 'db/0_schema/01_roles.sql': file(1) });
  cleanups.push(async () => {
    await project.remove();
    await query('postgres', `DROP ROLE IF EXISTS ${role}`);
  });
  const change = () => writeFile(join(project.root, 'db/0_schema/01_roles.sql'), file(2));
  return { project, role, change };
}

async function seed(project: CliProject): Promise<string> {
  const result = await project.run(['seed']);
  expect(result.code).toBe(0);
  return result.stdout.trim().split('/').at(-1)!;
}

async function exists(database: string): Promise<boolean> {
  return (await query('postgres', `SELECT FROM pg_database WHERE datname = '${database}'`)).length === 1;
}

const hint = (role: string) =>
  `  hint: roles are shared by the whole server: create ${role} only when missing ` +
  `(DO $$ BEGIN CREATE ROLE "${role}"; EXCEPTION WHEN duplicate_object THEN NULL; END $$), ` +
  'or rebuild with --recreate (drops the previous template, its clones and the roles its builds created first)';

describe('roles across rebuilds', () => {
  it('DROP ROLE IF EXISTS + CREATE ROLE: says the previous template and its clones own objects of the role; --recreate rebuilds', async () => {
    const { project, role, change } = await rolesProject((role) => `DROP ROLE IF EXISTS ${role};\nCREATE ROLE ${role};`);
    const clones = [await seed(project), await seed(project)];
    await change();

    const failed = await project.run(['build']);
    expect(failed.code).toBe(1);
    const lines = withoutProgress(failed);
    expect(lines[0]).toBe(
      `error: db/0_schema/01_roles.sql:1:1: role "${role}" cannot be dropped: the previous template ${project.templateName} and its 2 clones own objects of it`,
    );
    expect(lines.at(-1)).toBe(hint(role));
    expect(lines.slice(1, -1)).toContain(`  DETAIL: 1 object in database ${project.templateName}`);
    for (const clone of clones) expect(await exists(clone)).toBe(true);

    const rebuilt = await project.run(['build', '--recreate']);
    expect(withoutProgress(rebuilt)).toEqual([expect.stringMatching(new RegExp(`^built ${project.templateName}: 1 file, `))]);
    expect(rebuilt.code).toBe(0);
    for (const clone of clones) expect(await exists(clone)).toBe(false);
    expect(await query('postgres', `SELECT count(*)::int AS n FROM pg_roles WHERE rolname = '${role}'`)).toEqual([{ n: 1 }]);
    const clone = await seed(project);
    expect(await query(clone, `SELECT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE relname = 't2'`)).toEqual([{ owner: role }]);
  });

  it('plain CREATE ROLE: says a previous build created it; seed --recreate drops the role it recorded and rebuilds', async () => {
    const { project, role, change } = await rolesProject((role) => `CREATE ROLE ${role};`);
    await seed(project);
    await change();

    const failed = await project.run(['seed']);
    expect(failed.code).toBe(1);
    expect(withoutProgress(failed)).toEqual([
      `error: db/0_schema/01_roles.sql:1:1: role "${role}" already exists: a previous build of ${project.templateName} created it`,
      hint(role),
    ]);

    const recreated = await project.run(['seed', '--recreate']);
    expect(recreated.code).toBe(0);
    expect(recreated.stdout).toMatch(new RegExp(`/${project.templateName}_[0-9a-f]{8}\\n$`));
    await change(); // the same content: nothing to rebuild, nothing dropped
    expect((await project.run(['seed', '--recreate'])).code).toBe(0);
    expect((await project.run(['list', '--json'])).stdout).toContain(recreated.stdout.trim().split('/').at(-1));
  });

  it('--recreate refuses, dropping nothing, when a recorded role has objects elsewhere on the server', async () => {
    const { project, role, change } = await rolesProject((role) => `CREATE ROLE ${role};`);
    const clone = await seed(project);
    const elsewhere = `other_${randomBytes(4).toString('hex')}`;
    await query('postgres', `CREATE DATABASE ${elsewhere} OWNER ${role}`);
    cleanups.push(() => query('postgres', `DROP DATABASE IF EXISTS ${elsewhere}`).then(() => {}));
    await change();

    const refused = await project.run(['build', '--recreate']);
    expect(refused.code).toBe(2);
    expect(withoutProgress(refused)).toEqual([
      `error: cannot recreate ${project.templateName}: role "${role}", created by its builds, also has objects or privileges in database ${elsewhere}`,
      `  hint: dbfast drops only what its builds made: drop or reassign those objects (REASSIGN OWNED BY "${role}" TO ...; DROP OWNED BY "${role}") or rebuild without --recreate`,
    ]);
    expect(await exists(project.templateName)).toBe(true);
    expect(await exists(clone)).toBe(true);
  });

  it('records only the new roles the built database uses: one that merely appeared meanwhile is never --recreate\'s to drop', async () => {
    const bystander = `bystander_${randomBytes(4).toString('hex')}`;
    cleanups.push(() => query('postgres', `DROP ROLE IF EXISTS ${bystander}`).then(() => {}));
    // Stands in for a role another session creates while the build runs: new, and unused by the build.
    const { project, role } = await rolesProject((role) => `CREATE ROLE ${role};\nCREATE ROLE ${bystander};`);
    const built = await project.run(['build', '--json']);
    expect(built.code).toBe(0);
    expect(JSON.parse(built.stdout).roles).toEqual([role]);
  });
});
