/**
 * Checking a backup: its bytes against the SHA-256 taken when it was written, the whole archive
 * read back with its rows counted, and on request a trial restore into a scratch database of the
 * local server (never the remote), compared with the metadata and checked by [validation].
 */
import type { DbfastConfig } from '../config/index.js';
import { DbfastError, isDbfastError } from '../errors.js';
import { withClient } from '../pg/client.js';
import { dropDatabase } from '../pg/databases.js';
import { resolveTarget } from '../pg/target.js';
import { validateDatabase } from '../validate.js';
import { checksum, readArchive } from './archive.js';
import { contentProblems } from './content.js';
import { programFor } from './create.js';
import { loadIntoNewDatabase, withScratchName } from './load.js';
import { archivePath, type Backup, type BackupCheck, writeMetadata } from './store.js';

export interface VerifyOptions {
  /** Also restore it into a scratch database and compare. */
  restore?: boolean;
  env?: NodeJS.ProcessEnv;
}

/**
 * Checks a backup and records the result in its metadata: the archive's check as `lastCheck`, a
 * trial restore as `trialRestore`. Returns the archive's check when it failed, else the trial
 * restore's (when asked for). A problem is reported in the result, not thrown.
 */
export async function verifyBackup(config: DbfastConfig, backup: Backup, options: VerifyOptions = {}): Promise<BackupCheck> {
  const env = options.env ?? process.env;
  const problem = await archiveProblem(config, backup, env, { readWhole: true });
  const lastCheck = checkResult('read', problem);
  let trialRestore = backup.trialRestore;
  if (lastCheck.ok && options.restore) trialRestore = checkResult('restore', await trialRestoreProblem(config, backup, env));
  await writeMetadata(backup.folder, { ...withoutFolder(backup), lastCheck, ...(trialRestore ? { trialRestore } : {}) });
  return lastCheck.ok && options.restore && trialRestore ? trialRestore : lastCheck;
}

function checkResult(level: BackupCheck['level'], problem: string | undefined): BackupCheck {
  return { at: new Date().toISOString(), level, ok: problem === undefined, ...(problem ? { problem } : {}) };
}

/**
 * Throws BACKUP_CORRUPT unless the archive is sound. One already read whole is checked by its
 * SHA-256 alone: the same bytes read the same way again. Any other is read whole.
 */
export async function requireSound(config: DbfastConfig, backup: Backup, env: NodeJS.ProcessEnv): Promise<void> {
  let check: BackupCheck;
  if (backup.lastCheck.ok) {
    const problem = await archiveProblem(config, backup, env, { readWhole: false });
    if (problem === undefined) return;
    check = checkResult('read', problem);
    await writeMetadata(backup.folder, { ...withoutFolder(backup), lastCheck: check });
  } else {
    check = await verifyBackup(config, backup, { env });
  }
  if (!check.ok) {
    throw new DbfastError('BACKUP_CORRUPT', `backup ${backup.id} is not sound: ${check.problem}`, {
      hint: 'nothing was changed; restore another backup (dbfast backup list)',
    });
  }
}

function withoutFolder(backup: Backup) {
  const { folder: _folder, ...metadata } = backup;
  return metadata;
}

/** What is wrong with the archive: its SHA-256 and size, and with `readWhole` a full read (both at once). */
async function archiveProblem(config: DbfastConfig, backup: Backup, env: NodeJS.ProcessEnv, options: { readWhole: boolean }): Promise<string | undefined> {
  const path = archivePath(backup);
  const reading = options.readWhole ? readProblem(config, backup, path, env) : Promise.resolve(undefined);
  // Settled before the checksum's verdict returns, so no pg_restore outlives this call.
  reading.catch(() => {});
  const sums = await checksum(path, backup.format).catch((error: NodeJS.ErrnoException) => error);
  const read = await reading.catch((error: unknown) => error);
  if (sums instanceof Error) return sums.code === 'ENOENT' ? `the archive ${path} is missing` : `the archive cannot be read: ${sums.message}`;
  if (sums.sizeBytes !== backup.sizeBytes) return `the archive is ${sums.sizeBytes} bytes where ${backup.sizeBytes} were written (truncated or changed)`;
  if (sums.sha256 !== backup.sha256) return 'the archive does not match the SHA-256 taken when it was written (corrupted or changed)';
  if (read instanceof Error) throw read;
  return read as string | undefined;
}

async function readProblem(config: DbfastConfig, backup: Backup, path: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const pgRestore = await programFor('pg_restore', Number.parseInt(backup.pgDumpVersion, 10), config, env);
  try {
    const contents = await readArchive(pgRestore, path);
    const differing = contents.rows.length !== backup.rows.length || contents.rows.some((entry, index) => entry.rows !== backup.rows[index]?.rows);
    return differing ? 'the rows read from the archive differ from those counted when it was written' : undefined;
  } catch (error) {
    if (isDbfastError(error, 'BACKUP_CORRUPT')) return error.message;
    throw error;
  }
}

async function trialRestoreProblem(config: DbfastConfig, backup: Backup, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const target = await resolveTarget(config, env);
  const pgRestore = await programFor('pg_restore', Number.parseInt(backup.pgDumpVersion, 10), config, env);
  return withClient(target, (admin) => withScratchName(admin, backup.database, 'verify', async (scratch) => {
    try {
      // Roles of the source server need not exist here: ownership and GRANTs are not what is checked.
      await loadIntoNewDatabase(admin, target, scratch, backup, pgRestore, { noOwner: true, noPrivileges: true, like: { encoding: backup.properties.encoding, collate: 'C', ctype: 'C' } });
    } catch (error) {
      if (isDbfastError(error, 'RESTORE_FAILED')) return `the trial restore failed: ${error.message}`;
      throw error;
    }
    try {
      const problems = await withClient(
        target,
        async (client) => {
          const found = await contentProblems(client, backup, { objects: true, rows: true });
          await validateDatabase(client, config.validation).catch((error) => {
            if (!isDbfastError(error, 'VALIDATION_FAILED')) throw error;
            found.push(error.message.replace(/^template validation failed/, '[validation] failed'));
          });
          return found;
        },
        scratch,
      );
      return problems.length ? `the trial restore differs from the backup: ${problems.join('; ')}` : undefined;
    } finally {
      await dropDatabase(admin, scratch);
    }
  }));
}
