/**
 * Clone strategy by version and filesystem, for real: PostgreSQL 18's embedded server on an XFS
 * filesystem with reflink starts with file_copy_method = clone, and a clone of a large template
 * then takes next to no space; on ext4 it copies. The choice itself is a table (chooseStrategy).
 */
import { chmod, mkdir, mkdtemp, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseStrategy, supportsReflink } from '../../src/core/strategy.js';
import { runCli } from '../helpers/cli.js';
import { queryUrl } from '../helpers/database.js';
import { canTestReflinks, mountXfs, postgres18Bin } from '../helpers/reflink.js';
import { writeFiles } from '../helpers/repo.js';

describe('chooseStrategy', () => {
  it.each([
    [{ serverVersion: 140010, fileCopyMethod: null }, 'auto', undefined, false],
    [{ serverVersion: 150018, fileCopyMethod: null }, 'auto', 'file_copy', false],
    [{ serverVersion: 180004, fileCopyMethod: 'copy' }, 'auto', 'file_copy', false],
    [{ serverVersion: 180004, fileCopyMethod: 'clone' }, 'auto', 'file_copy', true],
    [{ serverVersion: 180004, fileCopyMethod: 'clone' }, 'wal_log', 'wal_log', false],
    [{ serverVersion: 150018, fileCopyMethod: null }, 'wal_log', 'wal_log', false],
  ] as const)('%o with clone_strategy %s: %s, reflink %s', (server, configured, strategy, reflink) => {
    expect(chooseStrategy(server, configured)).toMatchObject({ strategy, reflink, why: expect.any(String) });
  });

  it('says on PostgreSQL 18 without reflinks what would give them', () => {
    expect(chooseStrategy({ serverVersion: 180004, fileCopyMethod: 'copy' }, 'auto').why).toContain('file_copy_method = clone');
  });
});

const MB = 2 ** 20;

/** A project in `parent` whose template is ~130 MB of rows, on the embedded server of PostgreSQL 18. */
async function bigProject(parent: string) {
  const root = join(parent, 'project');
  await mkdir(root, { recursive: true });
  await chmod(root, 0o755);
  await writeFiles(root, {
    'dbfast.toml': '[database]\ntemplate_name = "reflink_template"\n[performance]\npool_size = 0\n',
    'db/0_schema/01.sql': "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS a FROM generate_series(1, 2000000) g;\n",
  });
  return root;
}

describe.skipIf(!canTestReflinks)('clones as reflinks: PostgreSQL 18 on XFS with reflink', () => {
  let env: Record<string, string>;
  const stops: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    env = { DBFAST_PG_BIN: await postgres18Bin() };
  }, 300_000);

  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
  });

  it('starts with file_copy_method = clone, status says so and why, and a clone of a 130 MB template takes next to no space', async () => {
    const xfs = await mountXfs();
    stops.push(xfs.unmount);
    expect(await supportsReflink(xfs.path)).toBe(true);
    const root = await bigProject(xfs.path);
    stops.push(async () => void (await runCli(['server', 'stop'], { cwd: root, env })));

    const first = await runCli(['seed', '--json'], { cwd: root, env });
    expect(first.code, first.stderr).toBe(0);
    const status = JSON.parse((await runCli(['status', '--json'], { cwd: root, env })).stdout);
    expect(status.server.version).toMatch(/^18\./);
    expect(status.server.cloneStrategy).toMatchObject({ strategy: 'file_copy', reflink: true, why: expect.stringContaining('file_copy_method = clone') });
    expect(status.template.sizeBytes).toBeGreaterThan(100 * MB);
    expect(await queryUrl(JSON.parse(first.stdout).url, 'SHOW file_copy_method')).toEqual([{ file_copy_method: 'clone' }]);

    const used = async () => {
      const fs = await statfs(xfs.path);
      return (fs.blocks - fs.bfree) * fs.bsize;
    };
    const before = await used();
    const second = await runCli(['seed', '--json'], { cwd: root, env });
    expect(second.code, second.stderr).toBe(0);
    expect(await queryUrl(JSON.parse(second.stdout).url, 'SELECT count(*)::int AS n FROM big')).toEqual([{ n: 2_000_000 }]);
    // A copy would take the template's size again; reflinks share its blocks.
    expect((await used()) - before).toBeLessThan(20 * MB);
  });

  it('on ext4 the same server copies, and status says how to get reflinks', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'dbfast-ext4-'));
    await chmod(parent, 0o755);
    stops.push(() => rm(parent, { recursive: true, force: true }));
    expect(await supportsReflink(parent)).toBe(false);
    const root = await bigProject(parent);
    await writeFiles(root, { 'db/0_schema/01.sql': 'CREATE TABLE small (id int);\n' });
    stops.push(async () => void (await runCli(['server', 'stop'], { cwd: root, env })));
    const seeded = await runCli(['seed', '--json'], { cwd: root, env });
    expect(seeded.code, seeded.stderr).toBe(0);
    const status = JSON.parse((await runCli(['status', '--json'], { cwd: root, env })).stdout);
    expect(status.server.cloneStrategy).toMatchObject({ strategy: 'file_copy', reflink: false, why: expect.stringContaining('file_copy_method = clone would') });
    expect(await queryUrl(JSON.parse(seeded.stdout).url, 'SHOW file_copy_method')).toEqual([{ file_copy_method: 'copy' }]);
  });
});
