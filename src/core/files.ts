import { randomUUID } from 'node:crypto';
import { chmod, mkdir, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';

/** `to` relative to `from`, with POSIX separators on every platform, as dbfast shows and records paths. */
export function relativePosix(from: string, to: string): string {
  return relative(from, to).split('\\').join('/');
}

/**
 * Writes a temporary file beside `target` and renames it over: readers see the old or the new file,
 * never half. `mode` gives the new file those permissions (a file being replaced keeps its own).
 * `durable` also survives a power cut: the content and then the rename are flushed to disk.
 */
export async function writeFileAtomic(target: string, content: string, options: { mode?: number; durable?: boolean } = {}): Promise<void> {
  const temporary = join(dirname(target), `.${basename(target)}.${randomUUID()}.tmp`);
  try {
    await makeDirectory(dirname(target));
    await writeFile(temporary, content, { flag: 'wx' });
    if (options.mode !== undefined) await chmod(temporary, options.mode);
    if (options.durable) await syncToDisk(temporary);
    await rename(temporary, target);
    if (options.durable) await syncToDisk(dirname(target));
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => {});
    throw error;
  }
}

/**
 * `mkdir -p` that fails instead of spinning: Node's recursive mkdir retries forever when a folder's
 * parent exists but mkdir still answers ENOENT (under /proc, or a parent that is a dangling symlink).
 * Rejects with the fs error of the folder that could not be made (its `path`).
 */
export async function makeDirectory(dir: string): Promise<void> {
  try {
    await mkdir(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && (await isDirectory(dir))) return;
    if (code !== 'ENOENT' || dirname(dir) === dir) throw error;
    await makeDirectory(dirname(dir));
    // The parent exists now: one more try, whose failure is final.
    await mkdir(dir).catch(async (again: NodeJS.ErrnoException) => {
      if (!(again.code === 'EEXIST' && (await isDirectory(dir)))) throw again;
    });
  }
}

function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (stats) => stats.isDirectory(),
    () => false,
  );
}

/** fsync: a file's content, or a folder's entries (and, recursively, the files and folders in it). */
export async function syncToDisk(path: string, options: { recursive?: boolean } = {}): Promise<void> {
  if (options.recursive && (await isDirectory(path))) {
    for (const entry of await readdir(path)) await syncToDisk(join(path, entry), options);
  }
  // Windows cannot open a folder, nor fsync a file opened read-only: there a folder's entries are not flushed.
  const handle = await open(path, (await isDirectory(path)) ? 'r' : 'r+').catch((error: NodeJS.ErrnoException) => {
    if (process.platform === 'win32' && ['EPERM', 'EISDIR', 'EACCES'].includes(error.code ?? '')) return null;
    throw error;
  });
  if (!handle) return;
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
