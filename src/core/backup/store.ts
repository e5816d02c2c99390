/**
 * Where backups live and what is known about each: `<[backups] directory>/<remote>/` (local
 * databases under `@local/`, a name no remote can have) holds `<id>.dump` or `<id>.dir/` beside
 * `<id>.json`. The metadata file is written last: a backup without one does not exist.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { DbfastConfig } from '../config/index.js';
import { DbfastError } from '../errors.js';
import { writeFileAtomic } from '../files.js';
import type { DatabaseLocale } from '../pg/databases.js';

export type BackupReason = 'manual' | 'pre-deploy' | 'pre-restore';
export type BackupFormat = 'custom' | 'directory';

/** Objects of the kinds a restored database is checked for, as pg_dump's table of contents and the catalog both count them. */
export interface ObjectCounts {
  tables: number;
  views: number;
  materializedViews: number;
  sequences: number;
  /** Functions, procedures and aggregates. */
  routines: number;
}

export interface TableRows {
  schema: string;
  table: string;
  rows: number;
}

/** A check of a backup: `read` re-reads the whole archive (and its checksum), `restore` restores it into a scratch database. */
export interface BackupCheck {
  at: string;
  level: 'read' | 'restore';
  ok: boolean;
  /** What was wrong, when not ok. */
  problem?: string;
}

export interface BackupMetadata {
  id: string;
  /** The remote it was taken from; absent for a database of the local server. */
  remote?: string;
  database: string;
  environment?: string;
  serverVersion: string;
  pgDumpVersion: string;
  format: BackupFormat;
  compression: string;
  createdAt: string;
  durationMs: number;
  sizeBytes: number;
  sha256: string;
  /** The archive's name in the backup's folder: `<id>.dump` or `<id>.dir`. */
  archive: string;
  /** Entries in the archive's table of contents. */
  objects: number;
  counts: ObjectCounts;
  rows: TableRows[];
  /** What the database was created with, for restoring it under a new name. */
  properties: DatabaseLocale & { owner: string };
  reason: BackupReason;
  label?: string;
  /** The last check of the archive itself (checksum and full read): what makes it sound or not. */
  lastCheck: BackupCheck;
  /**
   * The last trial restore. Its failure is reported but does not make the backup unsound: the local
   * server may lack what the remote has (an extension, a newer version).
   */
  trialRestore?: BackupCheck;
}

/** A backup as listed: its metadata and where its files are. */
export interface Backup extends BackupMetadata {
  folder: string;
}

const LOCAL_FOLDER = '@local';

/** The folder of one source's backups. */
export function backupFolder(config: DbfastConfig, remote: string | undefined): string {
  return join(config.backups.directory, remote ?? LOCAL_FOLDER);
}

/** `20261126-064512-3f9a`: sorts by time, unique even for two backups in one second. */
export function newBackupId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stamp}-${randomBytes(2).toString('hex')}`;
}

export function archivePath(backup: Backup): string {
  return join(backup.folder, backup.archive);
}

/** Every backup, newest first; `remote` narrows to one remote's (or, with `local`, the local server's). */
export async function listBackups(config: DbfastConfig, filter: { remote?: string; local?: boolean } = {}): Promise<Backup[]> {
  const root = config.backups.directory;
  const sources = filter.remote !== undefined ? [filter.remote] : filter.local ? [LOCAL_FOLDER] : await readdir(root).catch(() => []);
  const backups: Backup[] = [];
  for (const source of sources) {
    const folder = join(root, source);
    const names = await readdir(folder).catch(() => [] as string[]);
    for (const name of names.filter((entry) => entry.endsWith('.json') && !entry.startsWith('.'))) {
      const metadata = await readMetadata(join(folder, name));
      if (metadata) backups.push({ ...metadata, folder });
    }
  }
  return backups.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
}

async function readMetadata(path: string): Promise<BackupMetadata | null> {
  try {
    const metadata = JSON.parse(await readFile(path, 'utf8')) as BackupMetadata;
    return typeof metadata.id === 'string' && typeof metadata.sha256 === 'string' ? metadata : null;
  } catch {
    return null;
  }
}

/** The backup with this id, or a unique id prefix; a USAGE error otherwise. */
export async function findBackup(config: DbfastConfig, id: string): Promise<Backup> {
  const backups = await listBackups(config);
  const exact = backups.find((backup) => backup.id === id);
  if (exact) return exact;
  const matching = backups.filter((backup) => backup.id.startsWith(id));
  if (matching.length === 1) return matching[0]!;
  if (matching.length > 1) {
    throw new DbfastError('USAGE', `backup id "${id}" is ambiguous: ${matching.map((backup) => backup.id).join(', ')}`);
  }
  throw new DbfastError('USAGE', `no backup "${id}" in ${config.backups.directory}`, { hint: 'dbfast backup list shows the backups' });
}

export async function writeMetadata(folder: string, metadata: BackupMetadata): Promise<void> {
  await writeFileAtomic(join(folder, `${metadata.id}.json`), `${JSON.stringify(metadata, null, 2)}\n`, { durable: true, mode: 0o600 });
}

/** Removes the metadata first: a backup half removed no longer exists. */
export async function removeBackup(backup: Backup): Promise<void> {
  await rm(join(backup.folder, `${backup.id}.json`), { force: true });
  await rm(archivePath(backup), { recursive: true, force: true });
}
