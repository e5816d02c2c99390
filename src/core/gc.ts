/**
 * The garbage collection (`dbfast clean --gc`, and after each build that rebuilt): drops what the
 * project's templates no longer need, then keeps their databases within max_disk. Never waits for a
 * lock: a template whose build (or pool refill) is running is left for the next sweep, since its
 * scratch databases, checkpoints and unfinished spares are that run's, not orphans.
 */
import type pg from 'pg';
import { listCheckpoints } from './checkpoints.js';
import { listClones } from './clone.js';
import { databaseSizes, type DatabaseKind, type OwnedDatabase, projectDatabases } from './disk.js';
import { beyondKeep, listKept } from './kept.js';
import { databaseExists, dropDatabase } from './pg/databases.js';
import { lockKeys, tryAdvisoryLock } from './pg/locks.js';
import { readPool, staleSpares } from './pool.js';
import { formatBytes } from './size.js';
import { orphanNames } from './template.js';

export interface GcPolicy {
  /** Kept templates to leave per template (kept.ts). */
  keepTemplates: number;
  /** Clones created longer ago than this are dropped; absent: none. */
  cloneTtlMs?: number;
  maxDiskBytes?: number;
  /** Report what would be dropped, and drop nothing. */
  dryRun?: boolean;
}

export type GcReason = 'crashed run' | 'stale spare' | 'no template' | 'keep_templates' | 'clone_ttl' | 'max_disk';

export interface DroppedDatabase {
  name: string;
  kind: DatabaseKind;
  template: string;
  sizeBytes: number;
  reason: GcReason;
}

export interface GcResult {
  dryRun: boolean;
  /** In the order they were dropped. */
  dropped: DroppedDatabase[];
  /** What the project's databases use after the sweep (after a dry run: would use). */
  usedBytes: number;
  maxDiskBytes: number | null;
  /** Still over max_disk with nothing left that may go: templates and clones that have not expired. */
  overBudget: boolean;
  /** Templates whose build or pool refill was running: left for the next sweep. */
  busy: string[];
}

/** The sweep, for every template of the project (one per environment). */
export async function collectGarbage(admin: pg.Client, templates: string[], policy: GcPolicy): Promise<GcResult> {
  const sweep = new Sweep(admin, policy);
  for (const template of templates) await sweep.template(template);
  const clones = await listClones(admin);
  const { cloneTtlMs } = policy;
  const expired = clones.filter((clone) => templates.includes(clone.template) && cloneTtlMs !== undefined && Date.now() - Date.parse(clone.createdAt) > cloneTtlMs);
  for (const clone of expired) await sweep.drop({ ...clone, kind: 'clone' }, 'clone_ttl');
  const left = (await projectDatabases(admin, templates)).filter((database) => !sweep.dropped.some((gone) => gone.name === database.name));
  let usedBytes = left.reduce((sum, database) => sum + database.sizeBytes, 0);
  const max = policy.maxDiskBytes;
  for (const database of overBudgetOrder(left)) {
    if (max === undefined || usedBytes <= max) break;
    if (await sweep.dropLocked(database)) usedBytes -= database.sizeBytes;
  }
  return {
    dryRun: Boolean(policy.dryRun),
    dropped: sweep.dropped,
    usedBytes,
    maxDiskBytes: max ?? null,
    overBudget: max !== undefined && usedBytes > max,
    busy: [...sweep.busy],
  };
}

/** What max_disk may drop, first to last: kept templates, checkpoints, then spares, each oldest first. */
function overBudgetOrder(databases: OwnedDatabase[]): OwnedDatabase[] {
  const order: DatabaseKind[] = ['kept', 'checkpoint', 'spare'];
  return databases
    .filter((database) => order.includes(database.kind))
    .sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind) || (a.since ?? '').localeCompare(b.since ?? ''));
}

class Sweep {
  readonly dropped: DroppedDatabase[] = [];
  readonly busy = new Set<string>();

  constructor(
    private readonly admin: pg.Client,
    private readonly policy: GcPolicy,
  ) {}

  /** What the template's runs left behind, each part under the lock of the runs that make it. */
  async template(template: string): Promise<void> {
    const { admin } = this;
    await this.locked(lockKeys.template(template), template, async () => {
      for (const name of await orphanNames(admin, template)) await this.drop({ name, kind: 'orphan', template }, 'crashed run');
      // Checkpoints are made before the first build's swap: only under the lock is "no template" true.
      if (!(await databaseExists(admin, template))) {
        for (const { name } of await listCheckpoints(admin, template)) await this.drop({ name, kind: 'checkpoint', template }, 'no template');
      }
      for (const { name } of beyondKeep(await listKept(admin, template), this.policy.keepTemplates)) await this.drop({ name, kind: 'kept', template }, 'keep_templates');
    });
    await this.locked(lockKeys.pool(template), template, async () => {
      const view = await readPool(admin, template);
      for (const { name } of staleSpares(view)) await this.drop({ name, kind: 'spare', template }, 'stale spare');
      for (const name of view.unfinished) await this.drop({ name, kind: 'orphan', template }, 'crashed run');
    });
  }

  /** Drops a kept template or checkpoint (under the template's lock) or a spare (under the pool's); false when busy. */
  async dropLocked(database: OwnedDatabase): Promise<boolean> {
    const key = database.kind === 'spare' ? lockKeys.pool(database.template) : lockKeys.template(database.template);
    return this.locked(key, database.template, () => this.drop(database, 'max_disk'));
  }

  async drop(database: Omit<DroppedDatabase, 'reason' | 'sizeBytes'> & { sizeBytes?: number }, reason: GcReason): Promise<void> {
    const sizeBytes = database.sizeBytes ?? (await databaseSizes(this.admin, [database.name])).get(database.name) ?? 0;
    if (!this.policy.dryRun) await dropDatabase(this.admin, database.name);
    this.dropped.push({ name: database.name, kind: database.kind, template: database.template, sizeBytes, reason });
  }

  private async locked(key: string, template: string, work: () => Promise<void>): Promise<boolean> {
    const { locked } = await tryAdvisoryLock(this.admin, key, work);
    if (!locked) this.busy.add(template);
    return locked;
  }
}

/** Being over max_disk is reported, never an error: what is left may be someone's work. */
export function overBudgetMessage(result: GcResult): string {
  return `dbfast's databases use ${formatBytes(result.usedBytes)}, more than max_disk (${formatBytes(result.maxDiskBytes!)}): what is left are templates and clones that have not expired`;
}
