/**
 * What dbfast's databases of a project's templates hold on disk, by kind: the templates, kept
 * templates (kept.ts), layer checkpoints, pool spares, clones, and orphans of crashed runs (a
 * killed build's scratch database or retired template, a killed filler's unfinished spare).
 */
import type pg from 'pg';
import { listCheckpoints } from './checkpoints.js';
import { listClones } from './clone.js';
import { listKept } from './kept.js';
import { advisoryLockHeld, lockKeys } from './pg/locks.js';
import { readPool } from './pool.js';
import { orphanNames } from './template.js';

export const DATABASE_KINDS = ['template', 'kept', 'checkpoint', 'spare', 'clone', 'orphan'] as const;

export type DatabaseKind = (typeof DATABASE_KINDS)[number];

export interface OwnedDatabase {
  name: string;
  kind: DatabaseKind;
  template: string;
  sizeBytes: number;
  /** When it was made (a kept template: when a rebuild kept it); absent for the template and orphans. */
  since?: string;
}

export type DiskUsage = Record<DatabaseKind, { count: number; bytes: number }> & { totalBytes: number };

/** Every database dbfast made for `templates`, with its size. */
export async function projectDatabases(admin: pg.Client, templates: string[]): Promise<OwnedDatabase[]> {
  const clones = await listClones(admin);
  const found: Omit<OwnedDatabase, 'sizeBytes'>[] = [];
  for (const template of templates) {
    const pool = await readPool(admin, template);
    if (pool.template) found.push({ name: template, kind: 'template', template });
    for (const kept of await listKept(admin, template)) found.push({ name: kept.name, kind: 'kept', template, since: kept.keptAt });
    for (const checkpoint of await listCheckpoints(admin, template)) found.push({ name: checkpoint.name, kind: 'checkpoint', template, since: checkpoint.createdAt });
    for (const spare of pool.spares) found.push({ name: spare.name, kind: 'spare', template, since: spare.createdAt });
    // An unmarked spare is one a filler is making while it holds the pool's lock; only without a filler is it left by a killed one.
    const filling = pool.unfinished.length > 0 && (await advisoryLockHeld(admin, lockKeys.pool(template)));
    for (const name of pool.unfinished) found.push({ name, kind: filling ? 'spare' : 'orphan', template });
    for (const name of await orphanNames(admin, template)) found.push({ name, kind: 'orphan', template });
    for (const clone of clones) if (clone.template === template) found.push({ name: clone.name, kind: 'clone', template, since: clone.createdAt });
  }
  const sizes = await databaseSizes(admin, found.map((database) => database.name));
  // A database dropped between the listings and the sizes is gone: not counted.
  return found.flatMap((database) => (sizes.has(database.name) ? [{ ...database, sizeBytes: sizes.get(database.name)! }] : []));
}

export async function databaseSizes(admin: pg.Client, names: string[]): Promise<Map<string, number>> {
  const { rows } = await admin.query<{ datname: string; size: string }>(
    'SELECT datname, pg_database_size(oid)::text AS size FROM pg_database WHERE datname = ANY($1)',
    [names],
  );
  return new Map(rows.map((row) => [row.datname, Number(row.size)]));
}

export function diskUsage(databases: OwnedDatabase[]): DiskUsage {
  const usage = { totalBytes: 0 } as DiskUsage;
  for (const kind of DATABASE_KINDS) usage[kind] = { count: 0, bytes: 0 };
  for (const { kind, sizeBytes } of databases) {
    usage[kind].count++;
    usage[kind].bytes += sizeBytes;
    usage.totalBytes += sizeBytes;
  }
  return usage;
}
