/** Dropping databases dbfast made, waiting out the moment a closed session still counts as using them. */
import type pg from 'pg';
import { quoteIdentifier as ident } from './sql/quote.js';

export async function dropDatabase(admin: pg.Client, name: string): Promise<void> {
  await admin.query(`ALTER DATABASE ${ident(name)} IS_TEMPLATE false`).catch(() => {});
  await retryWhileBusy(() => admin.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`));
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
