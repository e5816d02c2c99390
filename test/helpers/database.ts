import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import pg from 'pg';
import type { SqlSession } from '../../src/core/sql/execute.js';

export function testClientConfig(database = 'postgres', port = inject('serverPort')): pg.ClientConfig {
  return { host: '127.0.0.1', port, user: 'postgres', database };
}

export async function query<T extends pg.QueryResultRow = pg.QueryResultRow>(database: string, sql: string, port?: number) {
  const client = new pg.Client(testClientConfig(database, port));
  // A refused login must not leave its socket open: the server would keep that backend in
  // authentication (up to authentication_timeout), and DROP DATABASE waits for every backend.
  await client.connect().catch(async (error) => {
    await client.end().catch(() => {});
    throw error;
  });
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

/** Queries a database through a URL dbfast printed, exactly as a program would. */
export async function queryUrl(url: string, sql: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

/**
 * A new empty database for one test, with a session on it for executeFiles (`client` is the
 * session's current connection); `drop` cleans both up.
 */
export async function freshDatabase(port?: number) {
  const name = `t_${randomBytes(6).toString('hex')}`;
  await query('postgres', `CREATE DATABASE ${name}`, port);
  const connect = async () => {
    const client = new pg.Client(testClientConfig(name, port));
    await client.connect();
    return client;
  };
  let client = await connect();
  const session: SqlSession = {
    get client() {
      return client;
    },
    async reconnect() {
      const previous = client;
      client = await connect();
      await previous.end();
    },
  };
  return {
    name,
    session,
    get client() {
      return client;
    },
    async drop() {
      await client.end().catch(() => {});
      await query('postgres', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`, port);
    },
  };
}

/**
 * Waits (up to 30 s) until a backend other than the asking one matches `condition` (SQL over
 * pg_stat_activity) on the server at `port`; with `gone`, until none does.
 */
export async function untilBackend(condition: string, options: { port?: number; gone?: boolean } = {}): Promise<void> {
  for (let attempt = 0; attempt < 600; attempt++) {
    const rows = await query('postgres', `SELECT 1 FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND ${condition}`, options.port);
    if (rows.length > 0 !== Boolean(options.gone)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(options.gone ? `a backend still matches ${condition}` : `no backend matched ${condition}`);
}
