import { mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config/index.js';
import { initProject, renderConfig } from '../../src/core/init.js';

let root: string;

beforeEach(async () => {
  root = await realpath(await mkdtemp(path.join(os.tmpdir(), 'dbfast-init-')));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function repository(dir: string, entries: string[]): Promise<void> {
  for (const entry of entries) {
    if (entry.endsWith('.sql')) await writeFile(path.join(dir, entry), 'SELECT 1;\n');
    else await mkdir(path.join(dir, entry), { recursive: true });
  }
}

describe('initProject', () => {
  it('finds numbered directories in numeric order and proposes local and production', async () => {
    const db = path.join(root, 'db');
    await mkdir(db);
    await repository(db, ['10_late_fixes', '2_seed_common', '0_Schema', '1_migrations', 'notes', '3_readme.sql']);
    const result = await initProject({ dir: root });
    expect(result.path).toBe(path.join(root, 'dbfast.toml'));
    expect(result.directories).toEqual(['0_Schema', '1_migrations', '2_seed_common', '10_late_fixes']);
    expect(result.environments).toEqual({
      local: ['0_Schema', '1_migrations', '2_seed_common', '10_late_fixes'],
      production: ['0_Schema', '1_migrations'],
    });
    expect(await readFile(result.path, 'utf8')).toBe(result.content);
  });

  it('writes a file that loadConfig reads back without warnings', async () => {
    const db = path.join(root, 'sql');
    await mkdir(db);
    await repository(db, ['0_schema', '1_seed']);
    const result = await initProject({ dir: root, repoDir: 'sql', templateName: 'shop_template' });
    const config = await loadConfig({ cwd: root, env: {} });
    expect(config.warnings).toEqual([]);
    expect(config.configPath).toBe(result.path);
    expect(config.templateName).toBe('shop_template');
    expect(config.repositories[0]?.path).toBe(db);
    expect(config.database).toBeNull();
    expect(config.defaultEnvironment).toBe('local');
    expect(config.environments).toEqual({
      local: { includeDirectories: ['0_schema', '1_seed'] },
      production: { includeDirectories: ['0_schema'] },
    });
  });

  it('comments out a remote example that is valid once uncommented, deploying the last proposed environment', async () => {
    const db = path.join(root, 'db');
    await mkdir(db);
    await repository(db, ['0_schema', '1_seed']);
    const result = await initProject({ dir: root });
    const start = result.content.indexOf('# [remotes.staging]');
    const uncommented = result.content.slice(0, start) + result.content.slice(start).replace(/^# (?=\[remotes|[a-z_]+ = )/gm, '');
    await writeFile(result.path, uncommented);
    const config = await loadConfig({ cwd: root, env: {} });
    expect(config.warnings).toEqual([]);
    expect(config.remotes.staging).toMatchObject({
      url: 'postgresql://deploy@staging.example.com:5432/app',
      passwordEnv: 'STAGING_DB_PASSWORD',
      environment: 'production',
      allowDestructive: false,
      backupBeforeDeploy: true,
      requireConfirmation: true,
    });
  });

  it('still writes a valid config, environments commented out, when the repository is missing', async () => {
    const result = await initProject({ dir: root });
    expect(result.directories).toEqual([]);
    expect(result.environments).toEqual({});
    expect(result.content).toContain('# [environments.local]');
    const config = await loadConfig({ cwd: root, env: {} });
    expect(config.warnings).toEqual([]);
    expect(config.environments).toEqual({});
    expect(config.templateName).toBe(`${path.basename(root).replace(/[^a-z0-9_]+/gi, '_').toLowerCase()}_template`);
  });

  it('omits production when no directory holds schema or migrations', async () => {
    const db = path.join(root, 'db');
    await mkdir(db);
    await repository(db, ['0_tables', '1_data']);
    expect((await initProject({ dir: root })).environments).toEqual({ local: ['0_tables', '1_data'] });
  });

  it('refuses to overwrite an existing dbfast.toml without force', async () => {
    await writeFile(path.join(root, 'dbfast.toml'), '# mine\n');
    await expect(initProject({ dir: root })).rejects.toMatchObject({
      code: 'CONFIG_EXISTS',
      message: 'already exists',
      file: path.join(root, 'dbfast.toml'),
      hint: 'use --force to overwrite it',
    });
    expect(await readFile(path.join(root, 'dbfast.toml'), 'utf8')).toBe('# mine\n');
  });

  it('overwrites with force and leaves no temporary file behind', async () => {
    await writeFile(path.join(root, 'dbfast.toml'), '# mine\n');
    const result = await initProject({ dir: root, force: true });
    expect(await readFile(path.join(root, 'dbfast.toml'), 'utf8')).toBe(result.content);
    expect(await readdir(root)).toEqual(['dbfast.toml']);
  });

  it('refuses an invalid template name with a usage error', async () => {
    await expect(initProject({ dir: root, templateName: 'Bad-Name' })).rejects.toMatchObject({ code: 'USAGE' });
    expect(await readdir(root)).toEqual([]);
  });
});

describe('renderConfig', () => {
  it('shows how to give a password without ever holding one', () => {
    const content = renderConfig({ repoDir: 'db', templateName: 'app_template', directories: [] });
    expect(content).toContain('# password_env = "PGPASSWORD"');
    expect(content).not.toMatch(/^\s*#?\s*password\s*=/m);
  });

  it('quotes names so that odd directory names stay valid TOML', async () => {
    const directories = ['0_schema "v2"', '1_back\\slash'];
    await writeFile(
      path.join(root, 'dbfast.toml'),
      renderConfig({ repoDir: 'my db', templateName: 'app_template', directories }),
    );
    const config = await loadConfig({ cwd: root, env: {} });
    expect(config.environments.local?.includeDirectories).toEqual(directories);
    expect(config.repositories[0]?.path).toBe(path.join(root, 'my db'));
  });
});
