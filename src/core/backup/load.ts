/** Restoring an archive into a database of its own, created for it: what a trial restore and a swapping restore share. */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { withClient } from '../pg/client.js';
import { createDatabase, createDatabaseLike, type DatabaseLocale, dropDatabase } from '../pg/databases.js';
import { nameWithSuffix } from '../names.js';
import { lockKeys, withAdvisoryLock } from '../pg/locks.js';
import type { ServerTarget } from '../pg/target.js';
import { type Program, runTool } from '../tools.js';
import { archivePath, type Backup } from './store.js';

export interface LoadOptions {
  /** Objects owned by the restoring user (pg_restore --no-owner): for a user that cannot give them away. */
  noOwner?: boolean;
  /** No GRANTs (pg_restore --no-privileges): for a check that needs no roles of the source server. */
  noPrivileges?: boolean;
  /** Parallel pg_restore jobs. */
  jobs?: number;
  /** The new database's owner. */
  owner?: string;
  /** Where the new database's encoding and locale come from (default: the backup's; null: the server's defaults). */
  like?: DatabaseLocale | null;
}

/** pg_restore's --dbname as a connection string: a database name holding `=` would otherwise be read as one. */
function dbnameArgument(database: string): string {
  return `--dbname=dbname='${database.replace(/[\\']/g, (character) => `\\${character}`)}'`;
}

/** Scratch databases, as named by `withScratchName`: `<base>__dbfast_restore_<8 hex>`, `__dbfast_verify_`, `__dbfast_describe_`. */
export const SCRATCH_PATTERN = '__dbfast_(restore|verify|describe)_[0-9a-f]{8}$';

/**
 * Runs `work` with a new scratch database name beside `base` (unique, within 63 bytes), holding its
 * advisory lock on `admin` throughout: `backup prune` drops only scratch databases whose lock is free.
 */
export function withScratchName<T>(admin: pg.Client, base: string, purpose: 'restore' | 'verify' | 'describe', work: (name: string) => Promise<T>): Promise<T> {
  const name = nameWithSuffix(base, `__dbfast_${purpose}_${randomBytes(4).toString('hex')}`);
  return withAdvisoryLock(admin, lockKeys.scratch(name), () => work(name));
}

/**
 * Creates `name` and restores the backup into it, stopping at the first error. On failure the
 * database is dropped again: nothing half restored is left.
 */
export async function loadIntoNewDatabase(
  admin: pg.Client,
  target: ServerTarget,
  name: string,
  backup: Backup,
  pgRestore: Program,
  options: LoadOptions = {},
): Promise<void> {
  const like = options.like === undefined ? backup.properties : options.like;
  await createDatabaseLike(admin, name, { ...(like ?? {}), ...(options.owner ? { owner: options.owner } : {}) });
  try {
    const connection = await target.toolConnection(name);
    const args = [
      dbnameArgument(name),
      '--exit-on-error',
      ...(options.noOwner ? ['--no-owner'] : []),
      ...(options.noPrivileges ? ['--no-privileges'] : []),
      ...(options.jobs && options.jobs > 1 ? [`--jobs=${options.jobs}`] : []),
      archivePath(backup),
    ];
    await runTool(pgRestore, args, { connection, errorCode: 'RESTORE_FAILED' });
  } catch (error) {
    await dropDatabase(admin, name).catch(() => {});
    throw error;
  }
}

/**
 * Runs `work` on a throwaway clone of a template (templates refuse connections), a scratch
 * database dropped afterwards.
 */
export function withTemplateClone<T>(local: ServerTarget, template: string, work: (clone: string) => Promise<T>): Promise<T> {
  return withClient(local, (admin) =>
    withScratchName(admin, template, 'describe', async (clone) => {
      await createDatabase(admin, clone, { template });
      try {
        return await work(clone);
      } finally {
        await dropDatabase(admin, clone);
      }
    }),
  );
}
