/** Creating and dropping databases, as template and clone code both do. */
import type pg from 'pg';
import { quoteIdentifier as ident, quoteLiteral } from '../sql/quote.js';

export interface CreateDatabaseOptions {
  template: string;
  /** CREATE DATABASE strategy, on PostgreSQL 15+ only. */
  strategy?: 'file_copy' | 'wal_log';
}

/** CREATE DATABASE ... TEMPLATE, retried while a session that just closed still counts as using the template. */
export async function createDatabase(client: pg.Client, name: string, options: CreateDatabaseOptions): Promise<void> {
  const strategy = options.strategy ? ` STRATEGY ${options.strategy.toUpperCase()}` : '';
  await retryWhileBusy(() => client.query(`CREATE DATABASE ${ident(name)} TEMPLATE ${ident(options.template)}${strategy}`));
}

export async function dropDatabase(client: pg.Client, name: string): Promise<void> {
  await client.query(`ALTER DATABASE ${ident(name)} IS_TEMPLATE false`).catch(() => {});
  await retryWhileBusy(() => client.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`));
}

export async function databaseExists(client: pg.Client, name: string): Promise<boolean> {
  return (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
}

/** The names of every database on the server. */
export async function databaseNames(client: pg.Client): Promise<Set<string>> {
  const { rows } = await client.query<{ datname: string }>('SELECT datname FROM pg_database');
  return new Set(rows.map((row) => row.datname));
}

const OBJECT_IN_USE = '55006';

/**
 * A backend that just disconnected may still be counted as using a database for a few
 * milliseconds ("is being accessed by other users"): retry with a short backoff.
 */
export async function retryWhileBusy<T>(work: () => Promise<T>, attempts = 40): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if ((error as { code?: string }).code !== OBJECT_IN_USE || attempt >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(10 * attempt, 250)));
    }
  }
}

/** A database's encoding and locale; `localeProvider` `i` (ICU, PostgreSQL 15+) with its `icuLocale`. */
export interface DatabaseLocale {
  encoding: string;
  collate: string;
  ctype: string;
  localeProvider?: string;
  icuLocale?: string;
}

/** An empty database (from template0) with this encoding and locale (else the server's), owned by `owner` when given. */
export async function createDatabaseLike(client: pg.Client, name: string, like: Partial<DatabaseLocale> & { owner?: string }): Promise<void> {
  const owner = like.owner ? ` OWNER ${ident(like.owner)}` : '';
  const icu = like.localeProvider === 'i' && like.icuLocale ? ` LOCALE_PROVIDER icu ICU_LOCALE ${quoteLiteral(like.icuLocale)}` : '';
  const locale = like.encoding ? `ENCODING ${quoteLiteral(like.encoding)} LC_COLLATE ${quoteLiteral(like.collate ?? 'C')} LC_CTYPE ${quoteLiteral(like.ctype ?? 'C')}` : '';
  const settings = `${locale}${icu}`;
  await retryWhileBusy(() => client.query(`CREATE DATABASE ${ident(name)} TEMPLATE template0 ${settings}${owner}`));
}
