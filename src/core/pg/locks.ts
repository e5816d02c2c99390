/**
 * Server-side advisory locks, so that they hold across processes and machines sharing a server.
 * Session-level: released when the work ends, and by the server when a process dies. They are
 * re-entrant within one session, which is why each unit of work takes its own connection.
 */
import type pg from 'pg';

/** Every lock dbfast takes, named in one place. */
export const lockKeys = {
  /** One builder per template at a time. */
  template: (name: string) => `dbfast:template:${name}`,
  /** One filler of a template's warm pool at a time. */
  pool: (template: string) => `dbfast:pool:${template}`,
  /** max_concurrent_clones slots, server-wide. */
  cloneSlot: (slot: number) => `dbfast:clone-slot:${slot}`,
  /**
   * One deploy (or rollback) to a database at a time, held on its server: keyed by the database,
   * not by the remote's name, which two configurations may spell differently.
   */
  deploy: (database: string) => `dbfast:deploy:${database}`,
  /** Held while a restore's scratch database exists: one whose lock is free was left by a process that died. */
  scratch: (name: string) => `dbfast:scratch:${name}`,
  /** Held by a running `dbfast serve` for its lifetime: one manages a server's test databases (serve/catalog.ts). */
  serve: 'dbfast:serve',
};

const KEY = 'hashtextextended($1, 0)';

/** Waits for the lock named `key`, runs `work`, and releases the lock. */
export async function withAdvisoryLock<T>(client: pg.Client, key: string, work: () => Promise<T>): Promise<T> {
  await client.query(`SELECT pg_advisory_lock(${KEY})`, [key]);
  try {
    return await work();
  } finally {
    await client.query(`SELECT pg_advisory_unlock(${KEY})`, [key]).catch(() => {});
  }
}

/** Runs `work` holding the lock named `key` if it is free; `{ locked: false }` without waiting if it is not. */
export async function tryAdvisoryLock<T>(
  client: pg.Client,
  key: string,
  work: () => Promise<T>,
  options: LockScope = {},
): Promise<{ locked: true; result: T } | { locked: false }> {
  if (!(await takeAdvisoryLock(client, key, options))) return { locked: false };
  try {
    return { locked: true, result: await work() };
  } finally {
    await client.query(`SELECT pg_advisory_unlock(${KEY})`, [key]).catch(() => {});
  }
}

export interface LockScope {
  /**
   * Advisory locks belong to the database the session is connected to: with `serverWide`, a
   * session of any other database holding the same key also makes the lock taken.
   */
  serverWide?: boolean;
}

/** Takes the lock named `key` if it is free, until it is released or the session ends. */
export async function takeAdvisoryLock(client: pg.Client, key: string, options: LockScope = {}): Promise<boolean> {
  const { rows } = await client.query<{ locked: boolean }>(`SELECT pg_try_advisory_lock(${KEY}) AS locked`, [key]);
  if (!rows[0]!.locked) return false;
  if (!options.serverWide || !(await advisoryLockHeld(client, key, { byOthers: true }))) return true;
  await client.query(`SELECT pg_advisory_unlock(${KEY})`, [key]);
  return false;
}

/**
 * Is the lock named `key` held by any session right now (in any database), or with `byOthers` by
 * another session than this one? Asked without taking it, so its holder is never delayed.
 */
export async function advisoryLockHeld(client: pg.Client, key: string, options: { byOthers?: boolean } = {}): Promise<boolean> {
  const others = options.byOthers ? ' AND pid <> pg_backend_pid()' : '';
  const { rows } = await client.query<{ held: boolean }>(
    `SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1${others}
       AND ((classid::bigint << 32) | objid::bigint) = ${KEY}) AS held`,
    [key],
  );
  return rows[0]!.held;
}
