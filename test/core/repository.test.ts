/**
 * A project's repositories: `[repository]` exactly as before [[repositories]] existed (its fingerprints
 * above all: a change there would rebuild every existing template), and several repositories built one
 * after the other, their files known and shown by `<name>/<path>`.
 */
import { rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type DbfastConfig, loadConfig } from '../../src/core/config/index.js';
import { resolveEnvironment } from '../../src/core/environments.js';
import { DbfastError } from '../../src/core/errors.js';
import {
  type ProjectScan,
  repositoryFiles,
  repositoryState,
  requireFiles,
  scannedPath,
  scanProjectRepository,
} from '../../src/core/repository.js';
import { tempRepo } from '../helpers/repo.js';

const roots: string[] = [];
afterEach(async () => {
  for (const root of roots.splice(0)) await rm(root, { recursive: true, force: true });
});

/** Files an hour old, so that the stat cache trusts them (a file written just now may change unseen within the same mtime). */
async function project(files: Record<string, string>): Promise<{ root: string; config: DbfastConfig; scan: ProjectScan }> {
  const root = await tempRepo(files);
  roots.push(root);
  const anHourAgo = Date.now() / 1000 - 3600;
  for (const path of Object.keys(files)) await utimes(join(root, path), anHourAgo, anHourAgo);
  const config = await loadConfig({ cwd: root, env: {} });
  return { root, config, scan: await scanProjectRepository(config) };
}

function state(config: DbfastConfig, scan: ProjectScan, environment?: string) {
  return repositoryState(config, resolveEnvironment(config, environment, {}), scan);
}

async function failure(promise: Promise<unknown>): Promise<DbfastError> {
  const error = await promise.catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(DbfastError);
  return error as DbfastError;
}

const SINGLE = {
  'db/0_schema/01_tables.sql': 'CREATE TABLE t (id int);\n',
  'db/1_seed/01_rows.sql': 'INSERT INTO t VALUES (1);\n',
};

/** Two repositories whose names sort the other way round, and whose paths differ from their names. */
const TWO = `
[[repositories]]
name = "shared"
path = "./schema-repo/db"

[[repositories]]
name = "app"
path = "./app"
`;

const TWO_FILES = {
  'schema-repo/db/0_schema/01_accounts.sql': 'CREATE TABLE accounts (id int PRIMARY KEY);\n',
  'schema-repo/db/2_seed/01_accounts.sql': 'INSERT INTO accounts VALUES (1);\n',
  'app/0_schema/01_orders.sql': 'CREATE TABLE orders (account int REFERENCES accounts);\n',
  'app/1_seed/01_orders.sql': 'INSERT INTO orders VALUES (1);\n',
};

describe('[repository]: unchanged', () => {
  // Computed by dbfast before [[repositories]] existed. If FORMAT_VERSION is bumped on purpose, recompute them.
  it('keeps the fingerprints and the shown paths it had', async () => {
    const environments = '[environments.local]\n[environments.production]\nexclude_directories = ["1_seed"]\n';
    const { config, scan } = await project({ 'dbfast.toml': `[repository]\npath = "./db"\n${environments}`, ...SINGLE });
    expect(state(config, scan, 'local').fingerprint).toBe('caa0906330e8415a73f7b3aae0b3fa690801928b17514bd971c06cc7908dd7d0');
    expect(state(config, scan, 'production').fingerprint).toBe('51b2ad773a3c68e94f535e9969d9284c421bfb177c569bd7d3a4e042d97c34ad');
    expect(state(config, scan, 'local').files.map((file) => file.relativePath)).toEqual(['db/0_schema/01_tables.sql', 'db/1_seed/01_rows.sql']);
    expect(scan.files.map((file) => [file.relativePath, file.repository])).toEqual([
      ['0_schema/01_tables.sql', undefined],
      ['1_seed/01_rows.sql', undefined],
    ]);

    const defaults = await project({ 'dbfast.toml': '', ...SINGLE });
    expect(state(defaults.config, defaults.scan).fingerprint).toBe('869e1a9e12e2d3b916d68fda9064d4b1ac5d6a9a49e1f6516d4ea662c501abe9');
  });

  it('keeps its stat cache where it was', async () => {
    const { root, config } = await project({ 'dbfast.toml': '', ...SINGLE });
    expect((await stat(join(root, '.dbfast/scan-cache.tsv'))).isFile()).toBe(true);
    expect((await scanProjectRepository(config)).hashedFiles).toBe(0);
  });

  it('names included files outside it from its folder', async () => {
    const { root, config } = await project({ 'dbfast.toml': '', ...SINGLE });
    expect(scannedPath(config, join(root, 'db/0_schema/inc.sql'))).toBe('0_schema/inc.sql');
    expect(scannedPath(config, join(root, 'inc/data.sql'))).toBe('../inc/data.sql');
  });
});

describe('[[repositories]]', () => {
  it('runs repository after repository in configured order, each in the usual path order', async () => {
    const { config, scan } = await project({ 'dbfast.toml': TWO, ...TWO_FILES });
    const built = state(config, scan);
    expect(built.files.map((file) => file.relativePath)).toEqual([
      'shared/0_schema/01_accounts.sql',
      'shared/2_seed/01_accounts.sql',
      'app/0_schema/01_orders.sql',
      'app/1_seed/01_orders.sql',
    ]);
    expect(built.files[2]!.absolutePath).toBe(join(config.projectDir, 'app/0_schema/01_orders.sql'));
    expect(built.selected.map((file) => file.repository)).toEqual(['shared', 'shared', 'app', 'app']);
  });

  it('keeps apart files at the same path in two repositories, and fingerprints both', async () => {
    const files = { 'a/0_schema/01.sql': 'SELECT 1;', 'b/0_schema/01.sql': 'SELECT 2;' };
    const toml = '[[repositories]]\nname = "a"\npath = "a"\n[[repositories]]\nname = "b"\npath = "b"\n';
    const { root, config, scan } = await project({ 'dbfast.toml': toml, ...files });
    const before = state(config, scan);
    expect(before.selected.map((file) => file.relativePath)).toEqual(['a/0_schema/01.sql', 'b/0_schema/01.sql']);
    // Each repository keeps its own stat cache: a second scan reads nothing.
    expect((await scanProjectRepository(config)).hashedFiles).toBe(0);

    await writeFile(join(root, 'b/0_schema/01.sql'), 'SELECT 3;');
    const edited = state(config, await scanProjectRepository(config));
    expect(edited.fingerprint).not.toBe(before.fingerprint);
  });

  it('fingerprints the order and the names of the repositories', async () => {
    const files = { 'a/0_schema/01.sql': 'SELECT 1;', 'b/0_schema/01.sql': 'SELECT 2;' };
    const fingerprint = async (toml: string) => {
      const { config, scan } = await project({ 'dbfast.toml': toml, ...files });
      return state(config, scan).fingerprint;
    };
    const a = '[[repositories]]\nname = "a"\npath = "a"\n';
    const b = '[[repositories]]\nname = "b"\npath = "b"\n';
    const fingerprints = [await fingerprint(a + b), await fingerprint(b + a), await fingerprint(a + b.replace('name = "b"', 'name = "c"'))];
    expect(new Set(fingerprints).size).toBe(3);
  });

  it('applies each repository its own patterns, matched inside it', async () => {
    const toml = `${TWO}include_patterns = ["0_schema/**"]\n`;
    const { config, scan } = await project({ 'dbfast.toml': toml, ...TWO_FILES });
    expect(scan.files.map((file) => file.relativePath)).toEqual([
      'shared/0_schema/01_accounts.sql',
      'shared/2_seed/01_accounts.sql',
      'app/0_schema/01_orders.sql',
    ]);
    expect(repositoryFiles(config, scan, [])).toEqual([
      { name: 'shared', path: 'schema-repo/db', files: 2, environments: {} },
      { name: 'app', path: 'app', files: 1, environments: {} },
    ]);
  });

  it('matches environment rules against paths that start with the repository name', async () => {
    const environments = `
[environments.local]
[environments.production]
include_directories = ["shared", "app/0_schema"]
exclude_files = ["shared/2_seed/*.sql"]
`;
    const { config, scan } = await project({ 'dbfast.toml': TWO + environments, ...TWO_FILES });
    expect(state(config, scan, 'production').files.map((file) => file.relativePath)).toEqual([
      'shared/0_schema/01_accounts.sql',
      'app/0_schema/01_orders.sql',
    ]);
    const environmentsOf = (name: string) => resolveEnvironment(config, name, {});
    expect(repositoryFiles(config, scan, [environmentsOf('local'), environmentsOf('production')])).toEqual([
      { name: 'shared', path: 'schema-repo/db', files: 2, environments: { local: 2, production: 1 } },
      { name: 'app', path: 'app', files: 2, environments: { local: 2, production: 1 } },
    ]);
  });

  it('names a missing repository folder by its key and name', async () => {
    const root = await tempRepo({ 'dbfast.toml': TWO, 'schema-repo/db/0_schema/01_accounts.sql': 'SELECT 1;' });
    roots.push(root);
    const config = await loadConfig({ cwd: root, env: {} });
    const error = await failure(scanProjectRepository(config));
    expect(error.code).toBe('REPOSITORY_NOT_FOUND');
    expect(error.message).toBe(`repositories[1] (app): repository folder not found: ${join(root, 'app')}`);
    expect(error.hint).toBe('create it, or set repositories[1].path in dbfast.toml');
  });

  it('names a repository without a file by its key and name, before anything runs', async () => {
    const { config, scan } = await project({ 'dbfast.toml': TWO, ...TWO_FILES });
    expect(() => requireFiles(config, resolveEnvironment(config, undefined, {}), state(config, scan))).not.toThrow();

    const toml = `${TWO}include_patterns = ["**/*.psql"]\n`;
    const empty = await project({ 'dbfast.toml': toml, ...TWO_FILES });
    let error: unknown;
    try {
      requireFiles(empty.config, resolveEnvironment(empty.config, undefined, {}), state(empty.config, empty.scan));
    } catch (caught) {
      error = caught;
    }
    expect(error).toMatchObject({
      code: 'REPOSITORY_EMPTY',
      message: 'repositories[1] (app): no SQL files in app',
      hint: 'nothing matches **/*.psql; add files or change repositories[1].include_patterns',
    });
  });

  it('names the files of a failing scan after the repository', async () => {
    const root = await tempRepo({ 'dbfast.toml': TWO, ...TWO_FILES });
    roots.push(root);
    await symlink(join(root, 'nowhere.sql'), join(root, 'app/1_seed/02_gone.sql'));
    const config = await loadConfig({ cwd: root, env: {} });
    const error = await failure(scanProjectRepository(config));
    expect(error).toMatchObject({ code: 'FILE_UNREADABLE', file: 'app/1_seed/02_gone.sql' });
  });

  it('names included files after the repository they lie in, others from the project folder', async () => {
    const { root, config } = await project({ 'dbfast.toml': TWO, ...TWO_FILES });
    expect(scannedPath(config, join(root, 'app/inc/data.sql'))).toBe('app/inc/data.sql');
    expect(scannedPath(config, join(root, 'schema-repo/db/inc/x.sql'))).toBe('shared/inc/x.sql');
    expect(scannedPath(config, join(root, 'schema-repo/other.sql'))).toBe('schema-repo/other.sql');
  });
});
