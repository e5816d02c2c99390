/**
 * Undoing the last deploy to a remote (made from this machine): the database it replaced, kept as
 * `__dbfast_prev`, is swapped back in (instant); without one, its pre-deploy backup is restored.
 * What the rollback replaces is kept as `__dbfast_prev` in turn, so it can be undone too.
 */
import { type DatabaseLocation, locateSource } from './backup/create.js';
import { describeLocation, restoreBackup, swapIn, withAdmin } from './backup/restore.js';
import { findBackup } from './backup/store.js';
import type { DbfastConfig } from './config/index.js';
import { holdingDeployLock } from './deploy.js';
import { type DeployRecord, deploymentHistory, writeDeploymentHistory } from './deployments.js';
import { DbfastError } from './errors.js';
import { databaseExists } from './pg/databases.js';
import { quoteIdentifier as ident } from './sql/quote.js';
import { remoteNamed } from './remote.js';

export interface RollbackOptions {
  yes?: boolean;
  /** Asks the question; the answer must be `typed` (the remote's name). Without it, `yes` is required. */
  confirm?: (question: string, typed: string) => Promise<boolean>;
  env?: NodeJS.ProcessEnv;
  onStep?: (step: string) => void;
}

export interface RollbackResult {
  remote: string;
  database: string;
  /** The deploy undone. */
  deploy: string;
  /** `swap-back`: the kept database is back; `restore`: the pre-deploy backup was restored. */
  method: 'swap-back' | 'restore';
  /** The deployed database, kept in turn (swap-back). */
  previous?: string;
}

export async function rollbackDeploy(config: DbfastConfig, remoteName: string, options: RollbackOptions = {}): Promise<RollbackResult> {
  const env = options.env ?? process.env;
  const remote = remoteNamed(config, remoteName);
  const history = await deploymentHistory(config, remote.name);
  const last = history.findLast((entry) => entry.rolledBackAt === undefined);
  if (!last) {
    throw new DbfastError('USAGE', `no deploy to remote ${remote.name} to roll back (from this machine)`, {
      hint: `dbfast backup list --remote ${remote.name} shows the backups to restore instead`,
    });
  }
  const location = await locateSource(config, { remote: remote.name }, env);
  const where = describeLocation(location);
  await confirmRollback(options, `roll back deploy ${last.id} (environment ${last.environment}) on ${where}?`, remote.name);

  const result = await holdingDeployLock(location, remote, () => undo(config, last, location, options, env));
  const rolledBack: DeployRecord = { ...last, rolledBackAt: new Date().toISOString() };
  await writeDeploymentHistory(config, remote.name, history.map((entry) => (entry === last ? rolledBack : entry)));
  return result;
}

/** Swaps back the database the deploy replaced, else restores its pre-deploy backup. */
async function undo(config: DbfastConfig, last: DeployRecord, location: DatabaseLocation, options: RollbackOptions, env: NodeJS.ProcessEnv): Promise<RollbackResult> {
  const remote = location.remote!;
  const swapped = last.previous
    ? await withAdmin(location.target, location.database, async (admin) => {
        if (!(await databaseExists(admin, last.previous!))) return undefined;
        options.onStep?.(`swapping ${last.previous} back in`);
        const kept = await swapIn(admin, location.database, last.previous!);
        await admin.query(`ALTER DATABASE ${ident(location.database)} WITH ALLOW_CONNECTIONS true`);
        return kept;
      })
    : undefined;
  if (swapped !== undefined) return { remote, database: location.database, deploy: last.id, method: 'swap-back', previous: swapped };
  if (last.backupId) {
    options.onStep?.(`restoring the pre-deploy backup ${last.backupId}`);
    const restored = await restoreBackup(config, await findBackup(config, last.backupId), { remote, yes: true, env, ...(options.onStep ? { onStep: options.onStep } : {}) });
    return { remote, database: location.database, deploy: last.id, method: 'restore', ...(restored.previous ? { previous: restored.previous } : {}) };
  }
  throw new DbfastError('USAGE', `deploy ${last.id} kept no previous database (or it was pruned) and took no backup: nothing to roll back to`, {
    hint: `dbfast backup list --remote ${remote} shows the backups there are`,
  });
}

async function confirmRollback(options: RollbackOptions, question: string, remote: string): Promise<void> {
  if (options.yes) return;
  if (!options.confirm) {
    throw new DbfastError('NOT_CONFIRMED', `rolling back replaces the database of remote ${remote}: pass --yes to confirm`, {
      hint: 'run it on a terminal to be asked instead',
    });
  }
  if (!(await options.confirm(question, remote))) throw new DbfastError('NOT_CONFIRMED', 'not confirmed: nothing was changed');
}
