/**
 * Removing old backups by count and age, per database (of a remote, or of the local server). A
 * backup is kept when any rule keeps it: among the newest `keepLast`, younger than `olderThanMs`,
 * the newest sound one of its database when no other kept one is sound (the newest at all when
 * none is sound), or pinned (by a deployment).
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { DbfastConfig } from '../config/index.js';
import { DbfastError, isDbfastError } from '../errors.js';
import { withClient } from '../pg/client.js';
import type pg from 'pg';
import { dropDatabase } from '../pg/databases.js';
import { lockKeys, tryAdvisoryLock } from '../pg/locks.js';
import { configuredTarget, resolveTarget } from '../pg/target.js';
import { nameWithSuffix } from '../names.js';
import { remoteNamed } from '../remote.js';
import { SCRATCH_PATTERN } from './load.js';
import { type Backup, backupFolder, listBackups, removeBackup } from './store.js';

export interface PruneRules {
  keepLast?: number;
  olderThanMs?: number;
}

export interface PruneOptions extends PruneRules {
  /** Only this remote's backups, and its `__dbfast_prev` databases. */
  remote?: string;
  dryRun?: boolean;
  /** Ids never removed (default: the backups the last deploy to each remote took, see deployedBackups). */
  pinned?: ReadonlySet<string>;
  env?: NodeJS.ProcessEnv;
  now?: number;
}

export interface PruneResult {
  removed: Backup[];
  kept: Backup[];
  /** Kept only because a protection applies, with why. */
  protected: { id: string; why: string }[];
  /**
   * `__dbfast_prev` databases of a restore that were dropped, and scratch databases a dead restore
   * left, as `remote/database` or `database` (local server).
   */
  droppedDatabases: string[];
  /** Servers whose `__dbfast_prev` databases could not be looked at, and why. */
  unreachable: { server: string; error: string }[];
  /** Left-over partial archives of backups that never finished. */
  removedLeftovers: string[];
  freedBytes: number;
  dryRun: boolean;
}

/** Which backups go, by the rules and protections: pure, for tests and --dry-run alike. */
export function selectForPrune(
  backups: Backup[],
  rules: PruneRules,
  options: { pinned?: ReadonlySet<string>; now?: number } = {},
): Pick<PruneResult, 'removed' | 'kept' | 'protected'> {
  const now = options.now ?? Date.now();
  const result: Pick<PruneResult, 'removed' | 'kept' | 'protected'> = { removed: [], kept: [], protected: [] };
  for (const group of groupByDatabase(backups)) {
    const remove: Backup[] = [];
    const keep: Backup[] = [];
    group.forEach((backup, index) => {
      const recent = rules.keepLast !== undefined && index < rules.keepLast;
      const young = rules.olderThanMs !== undefined && now - Date.parse(backup.createdAt) < rules.olderThanMs;
      (recent || young ? keep : remove).push(backup);
    });
    const pinned = remove.filter((backup) => options.pinned?.has(backup.id));
    for (const backup of pinned) result.protected.push({ id: backup.id, why: 'a deployment refers to it' });
    if (!keep.some(isSound)) {
      const lastSound = remove.find(isSound);
      if (lastSound && !pinned.includes(lastSound)) {
        pinned.push(lastSound);
        result.protected.push({ id: lastSound.id, why: `the only sound backup of ${sourceOf(lastSound)}` });
      }
    }
    const newest = group[0];
    if (keep.length === 0 && pinned.length === 0 && newest) {
      pinned.push(newest);
      result.protected.push({ id: newest.id, why: `the newest backup of ${sourceOf(newest)}, none of which is sound` });
    }
    result.kept.push(...keep, ...pinned);
    result.removed.push(...remove.filter((backup) => !pinned.includes(backup)));
  }
  return result;
}

export async function pruneBackups(config: DbfastConfig, options: PruneOptions = {}): Promise<PruneResult> {
  const rules: PruneRules = {
    ...(options.keepLast ?? config.backups.keepLast) !== undefined ? { keepLast: options.keepLast ?? config.backups.keepLast } : {},
    ...(options.olderThanMs ?? config.backups.maxAgeMs) !== undefined ? { olderThanMs: options.olderThanMs ?? config.backups.maxAgeMs } : {},
  };
  if (rules.keepLast === undefined && rules.olderThanMs === undefined) {
    throw new DbfastError('USAGE', 'nothing to prune by: give --keep-last or --older-than', {
      hint: 'or set keep_last and max_age in [backups] of dbfast.toml',
    });
  }
  if (options.remote !== undefined) remoteNamed(config, options.remote);
  const dryRun = Boolean(options.dryRun);
  const backups = await listBackups(config, options.remote === undefined ? {} : { remote: options.remote });
  const selected = selectForPrune(backups, rules, { ...options, pinned: options.pinned ?? (await deployedBackups(config)) });
  let freedBytes = 0;
  for (const backup of selected.removed) {
    freedBytes += backup.sizeBytes;
    if (!dryRun) await removeBackup(backup);
  }
  const leftovers = await staleLeftovers(config, backups, options.remote, options.now ?? Date.now());
  for (const leftover of leftovers) {
    freedBytes += leftover.bytes;
    if (!dryRun) await rm(leftover.path, { recursive: true, force: true });
  }
  const droppedDatabases: string[] = [];
  const unreachable: PruneResult['unreachable'] = [];
  const servers = options.remote === undefined ? [undefined, ...Object.keys(config.remotes)] : [options.remote];
  for (const remote of servers) {
    try {
      // Only databases this project backed up: a shared server holds other projects' too.
      const ours = new Set((await listBackups(config, remote === undefined ? { local: true } : { remote })).map((backup) => backup.database));
      // A remote this project never backed up has nothing of its restores (the local server has its trial restores).
      if (ours.size === 0 && remote !== undefined) continue;
      const dropped = await prunePreviousDatabases(config, remote, ours, rules, dryRun, options);
      droppedDatabases.push(...dropped.map((name) => (remote === undefined ? name : `${remote}/${name}`)));
    } catch (error) {
      if (!isDbfastError(error) || options.remote !== undefined) throw error;
      unreachable.push({ server: remote ?? 'the local server', error: error.message });
    }
  }
  return { ...selected, droppedDatabases, unreachable, removedLeftovers: leftovers.map((leftover) => leftover.path), freedBytes, dryRun };
}

/** The pre-deploy backup of the last deploy (not rolled back) to each remote: what a rollback would need. */
async function deployedBackups(config: DbfastConfig): Promise<Set<string>> {
  const { deploymentHistory } = await import('../deployments.js');
  const pinned = new Set<string>();
  for (const remote of Object.keys(config.remotes)) {
    const last = (await deploymentHistory(config, remote)).findLast((entry) => entry.rolledBackAt === undefined);
    if (last?.backupId) pinned.add(last.backupId);
  }
  return pinned;
}

function groupByDatabase(backups: Backup[]): Backup[][] {
  const groups = new Map<string, Backup[]>();
  for (const backup of [...backups].sort((a, b) => b.createdAt.localeCompare(a.createdAt))) {
    const key = sourceOf(backup);
    groups.set(key, [...(groups.get(key) ?? []), backup]);
  }
  return [...groups.values()];
}

function sourceOf(backup: Backup): string {
  return backup.remote === undefined ? `local database ${backup.database}` : `${backup.remote}/${backup.database}`;
}

function isSound(backup: Backup): boolean {
  return backup.lastCheck.ok;
}

/** A backup that never finished leaves a `.partial` archive, or (killed between rename and metadata) an archive without metadata. */
const LEFTOVER_AGE_MS = 3_600_000;

async function staleLeftovers(config: DbfastConfig, backups: Backup[], remote: string | undefined, now: number) {
  const folders = remote === undefined
    ? (await readdir(config.backups.directory).catch(() => [] as string[])).map((name) => join(config.backups.directory, name))
    : [backupFolder(config, remote)];
  const archives = new Set(backups.map((backup) => join(backup.folder, backup.archive)));
  const leftovers: { path: string; bytes: number }[] = [];
  for (const folder of folders) {
    const names = await readdir(folder).catch(() => [] as string[]);
    for (const name of names) {
      const path = join(folder, name);
      const match = /^\.?(.+?)\.(dump|dir)(\.partial)?$/.exec(name);
      // An archive whose metadata exists but cannot be read (edited, or a newer dbfast's) is not a leftover.
      if (!match || archives.has(path) || (!match[3] && names.includes(`${match[1]}.json`))) continue;
      const written = await lastWritten(path).catch(() => null);
      // An hour without a write anywhere in it: no running backup is still producing it.
      if (written && now - written.mtimeMs > LEFTOVER_AGE_MS) leftovers.push({ path, bytes: written.bytes });
    }
  }
  return leftovers;
}

/** The newest modification time in a file or folder (a directory archive's files are written inside it), and its size. */
async function lastWritten(path: string): Promise<{ mtimeMs: number; bytes: number }> {
  const stats = await stat(path);
  if (!stats.isDirectory()) return { mtimeMs: stats.mtimeMs, bytes: stats.size };
  let found = { mtimeMs: stats.mtimeMs, bytes: 0 };
  for (const name of await readdir(path)) {
    const inner = await lastWritten(join(path, name));
    found = { mtimeMs: Math.max(found.mtimeMs, inner.mtimeMs), bytes: found.bytes + inner.bytes };
  }
  return found;
}

/** The `<db>__dbfast_prev_<time>` databases restores left on a remote (or the local server) for the databases in `ours`, by the same rules per database. */
async function prunePreviousDatabases(
  config: DbfastConfig,
  remote: string | undefined,
  ours: ReadonlySet<string>,
  rules: PruneRules,
  dryRun: boolean,
  options: PruneOptions,
): Promise<string[]> {
  const env = options.env ?? process.env;
  const target = remote === undefined ? await resolveTarget(config, env) : await configuredTarget(remoteNamed(config, remote), config, env);
  const now = options.now ?? Date.now();
  return withClient(target, async (admin) => {
    const { rows } = await admin.query<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE datname ~ '__dbfast_prev_[0-9]{14}$' ORDER BY datname DESC",
    );
    const seen = new Map<string, number>();
    const dropped: string[] = [];
    for (const { datname } of rows) {
      const stamp = datname.slice(-14);
      // The database it replaced, whose name may have been cut to make room for the suffix.
      const base = [...ours].find((name) => nameWithSuffix(name, `__dbfast_prev_${stamp}`) === datname);
      if (base === undefined) continue;
      const index = seen.get(base) ?? 0;
      seen.set(base, index + 1);
      const takenAt = Date.parse(`${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 8)}T${stamp.slice(8, 10)}:${stamp.slice(10, 12)}:${stamp.slice(12, 14)}Z`);
      const recent = rules.keepLast !== undefined && index < rules.keepLast;
      const young = rules.olderThanMs !== undefined && now - takenAt < rules.olderThanMs;
      if (recent || young) continue;
      if (!dryRun) await dropDatabase(admin, datname);
      dropped.push(datname);
    }
    return [...dropped, ...(await dropAbandonedScratch(admin, dryRun))];
  });
}

/** Scratch databases of restores and trial restores whose process died: nobody holds their lock. */
async function dropAbandonedScratch(admin: pg.Client, dryRun: boolean): Promise<string[]> {
  const { rows } = await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname ~ $1 ORDER BY 1', [SCRATCH_PATTERN]);
  const dropped: string[] = [];
  for (const { datname } of rows) {
    const abandoned = await tryAdvisoryLock(admin, lockKeys.scratch(datname), async () => {
      if (!dryRun) await dropDatabase(admin, datname);
    });
    if (abandoned.locked) dropped.push(datname);
  }
  return dropped;
}
