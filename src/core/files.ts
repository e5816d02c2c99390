import { randomUUID } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';

/** `to` relative to `from`, with POSIX separators on every platform, as dbfast shows and records paths. */
export function relativePosix(from: string, to: string): string {
  return relative(from, to).split('\\').join('/');
}

/** Writes a temporary file beside `target` and renames it over: readers see the old or the new file, never half. */
export async function writeFileAtomic(target: string, content: string): Promise<void> {
  const temporary = join(dirname(target), `.${basename(target)}.${randomUUID()}.tmp`);
  try {
    await mkdir(dirname(target), { recursive: true });
    await writeFile(temporary, content, { flag: 'wx' });
    await rename(temporary, target);
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => {});
    throw error;
  }
}
