import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { type CloneInfo, selectForCleanup } from '../../src/core/clone.js';
import { Project } from '../../src/core/project.js';
import { dropTemplateAndClones } from '../helpers/cli.js';
import { query } from '../helpers/database.js';
import { tempRepo, writeFiles } from '../helpers/repo.js';

const projects: Project[] = [];
const dropped: string[] = [];
afterAll(async () => {
  for (const project of projects) {
    await project.clean({ all: true });
  }
  for (const name of dropped) await dropTemplateAndClones(name);
});

async function openOnTestServer(root: string) {
  const project = await Project.open({
    cwd: root,
    env: { DBFAST_DATABASE_URL: `postgresql://postgres@127.0.0.1:${inject('serverPort')}/postgres` },
  });
  projects.push(project);
  return project;
}

describe('status', () => {
  it('reports the template, the clones and exactly which files changed since the build', async () => {
    const name = `s_${randomBytes(4).toString('hex')}`;
    const root = await tempRepo({
      'dbfast.toml': `[database]\ntemplate_name = "${name}"\n`,
      'db/0_schema/a.sql': 'CREATE TABLE a (id int);',
      'db/1_seed/b.sql': 'INSERT INTO a VALUES (1);',
    });
    const project = await openOnTestServer(root);
    const before = await project.status();
    expect(before).toMatchObject({ server: { reachable: true, embedded: false }, repository: { files: 2, changed: null }, template: null });

    await project.seed();
    const built = await project.status();
    expect(built.repository).toMatchObject({ changed: false, changedFiles: { added: [], removed: [], modified: [] } });
    expect(built.template).toMatchObject({ name, files: 2 });
    expect(built.clones.count).toBe(1);
    expect(built.clones.totalBytes).toBeGreaterThan(0);

    await writeFile(join(root, 'db/1_seed/b.sql'), 'INSERT INTO a VALUES (2);');
    await writeFiles(root, { 'db/1_seed/c.sql': 'SELECT 1;' });
    const changed = await project.status();
    expect(changed.repository).toMatchObject({ changed: true, changedFiles: { added: ['1_seed/c.sql'], removed: [], modified: ['1_seed/b.sql'] } });
  });

  it('says where the template came from when another checkout built it from other content', async () => {
    const name = `s_${randomBytes(4).toString('hex')}`;
    const files = (value: number) => ({
      'dbfast.toml': `[database]\ntemplate_name = "${name}"\n`,
      'db/0_schema/a.sql': `CREATE TABLE a (id int DEFAULT ${value});`,
    });
    const mine = await openOnTestServer(await tempRepo(files(1)));
    const theirsRoot = await tempRepo(files(2));
    const theirs = await openOnTestServer(theirsRoot);
    await mine.build();
    const built = await theirs.build();
    const status = await mine.status();
    expect(status.repository).toMatchObject({
      changed: true,
      changedFiles: null,
      otherBuild: { fingerprint: built.template.fingerprint, builtAt: built.template.builtAt, builtBy: `${hostname()}:${theirsRoot}` },
    });
    // The checkout that built it knows what it built from.
    expect((await theirs.status()).repository).toMatchObject({ changed: false, otherBuild: null });
  });

  it('shows the space used by each kind of database of every environment\'s template', async () => {
    const name = `s_${randomBytes(4).toString('hex')}`;
    dropped.push(name, `${name}_x`);
    const toml = `[database]\ntemplate_name = "${name}"\n[performance]\npool_size = 0\nkeep_templates = 1\n[environments.main]\ntemplate_name = "${name}"\n[environments.other]\ntemplate_name = "${name}_x"\n`;
    const root = await tempRepo({ 'dbfast.toml': toml, 'db/0_schema/a.sql': 'CREATE TABLE a (id int);', 'db/1_seed/b.sql': 'INSERT INTO a VALUES (1);' });
    const opened = await Project.open({ cwd: root, env: { DBFAST_DATABASE_URL: `postgresql://postgres@127.0.0.1:${inject('serverPort')}/postgres` } });
    const main = opened.withEnvironment('main');
    await main.build();
    await writeFiles(root, { 'db/1_seed/b.sql': 'INSERT INTO a VALUES (2);' });
    await main.seed({ refill: false });
    await opened.withEnvironment('other').build();
    await query('postgres', `CREATE DATABASE "${name}__b12345678"`);

    const { disk } = await main.status();
    expect(disk).toMatchObject({
      template: { count: 2 },
      kept: { count: 1 },
      checkpoint: { count: 2 },
      spare: { count: 0, bytes: 0 },
      clone: { count: 1 },
      orphan: { count: 1 },
    });
    const kinds = [disk!.template, disk!.kept, disk!.checkpoint, disk!.clone, disk!.orphan];
    for (const kind of kinds) expect(kind.bytes).toBeGreaterThan(0);
    expect(disk!.totalBytes).toBe(kinds.reduce((sum, kind) => sum + kind.bytes, 0));
  });

  it('reports an unreachable configured server without failing', async () => {
    const root = await tempRepo({ 'db/a.sql': 'SELECT 1;' });
    const project = await Project.open({ cwd: root, env: { DBFAST_DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/postgres' } });
    const status = await project.status();
    expect(status.server).toMatchObject({ reachable: false, error: expect.stringContaining('cannot reach PostgreSQL') });
    expect(status.repository.files).toBe(1);
    expect(status.disk).toBeNull();
  });
});

describe('clean selection', () => {
  const clone = (name: string, minutesAgo: number): CloneInfo => ({
    kind: 'clone',
    name,
    template: 't',
    fingerprint: 'f',
    createdAt: new Date(Date.parse('2026-01-01T12:00:00Z') - minutesAgo * 60_000).toISOString(),
    sizeBytes: 1,
  });
  const now = Date.parse('2026-01-01T12:00:00Z');
  const clones = [clone('new', 1), clone('hour', 60), clone('day', 1440), clone('week', 10080)];
  const names = (selected: CloneInfo[]) => selected.map((c) => c.name);

  it('drops clones older than the limit', () => {
    expect(names(selectForCleanup(clones, { olderThanMs: 2 * 3_600_000 }, now))).toEqual(['day', 'week']);
  });
  it('keeps the newest N', () => {
    expect(names(selectForCleanup(clones, { keepLast: 3 }, now))).toEqual(['week']);
  });
  it('combines both: old ones, but never the newest N', () => {
    expect(names(selectForCleanup(clones, { olderThanMs: 30 * 60_000, keepLast: 3 }, now))).toEqual(['week']);
  });
  it('drops everything with all', () => {
    expect(names(selectForCleanup(clones, { all: true }, now))).toEqual(['new', 'hour', 'day', 'week']);
    expect(names(selectForCleanup(clones, { all: true, keepLast: 1 }, now))).toEqual(['hour', 'day', 'week']);
  });
  it('refuses all with an age limit: neither may silently win', () => {
    expect(() => selectForCleanup(clones, { all: true, olderThanMs: 3_600_000 }, now)).toThrow(
      expect.objectContaining({ code: 'USAGE', message: '--all and --older-than contradict each other' }),
    );
  });
});
