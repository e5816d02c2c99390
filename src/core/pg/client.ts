/**
 * Connections: every server is reached through withClient (one connection per unit of work,
 * always closed) or withSession (a connection that running SQL files may replace). Nothing keeps a
 * client for the life of an object, so a dead connection never outlives the work that saw it die.
 * Connection failures become DbfastErrors that never contain a password.
 */
import pg from 'pg';
import { DbfastError } from '../errors.js';
import type { SqlSession } from '../sql/execute.js';
import type { ServerTarget } from './target.js';

/** `settings`: values the session starts with (and RESET returns to), e.g. `{ lock_timeout: '5000' }`. */
export async function connect(target: ServerTarget, database?: string, settings: Record<string, string> = {}): Promise<pg.Client> {
  const config = target.clientConfig(database);
  const options = [config.options, ...Object.entries(settings).map(([name, value]) => `-c ${name}=${value.replace(/[\\ ]/g, '\\$&')}`)].filter(Boolean);
  const client = new pg.Client({ ...config, ...(options.length ? { options: options.join(' ') } : {}) });
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    throw connectionError(error, target, database ?? target.maintenanceDatabase);
  }
  // A dropped connection must surface as the failing query's error, not crash the process.
  client.on('error', () => {});
  return client;
}

/** Opens a connection (to the maintenance database unless `database` is given), runs `work`, and always closes it. */
export async function withClient<T>(target: ServerTarget, work: (client: pg.Client) => Promise<T>, database?: string): Promise<T> {
  const client = await connect(target, database);
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** pg.Client has these (its socket's ref and unref); @types/pg does not declare them. */
interface Referenced {
  ref(): void;
  unref(): void;
}

/**
 * Connections to the maintenance database kept for reuse by a long-lived caller (a Project): a
 * seed from the warm pool is two round trips, and opening a connection costs more than both. A
 * connection whose work failed is closed, never reused; an idle one does not keep the process
 * alive, and one the server closed is forgotten.
 */
export class ReusedConnections {
  private readonly idle = new Set<pg.Client>();
  private opening: Promise<pg.Client> | undefined;
  private closed = false;

  constructor(
    private readonly target: ServerTarget,
    private readonly maxIdle = 4,
  ) {}

  /** A connection is ready for the next use, or being opened. */
  get ready(): boolean {
    return this.idle.size > 0 || this.opening !== undefined;
  }

  /** Starts opening a connection for the next use, so that connecting overlaps other work (a scan). */
  prepare(): void {
    if (this.idle.size > 0 || this.opening) return;
    const opening = this.open();
    this.opening = opening;
    // Unused, it must not keep the process alive; use() references it again. A failure shows when use() connects itself.
    opening.then((client) => (client as unknown as Referenced).unref(), () => {});
  }

  async use<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
    // One turn of the event loop first: a connection the server closed while idle is then known (its 'end').
    if (this.idle.size > 0) await new Promise((resolve) => setImmediate(resolve));
    const client = this.take() ?? (await this.takeOpening()) ?? (await this.open());
    try {
      const result = await work(client);
      this.putBack(client);
      return result;
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const opened = await this.takeOpening();
    if (opened) this.idle.add(opened);
    const idle = [...this.idle];
    this.idle.clear();
    // Referenced again, or the process could exit with the goodbyes unsent and the caller's await unfinished.
    for (const client of idle) (client as unknown as Referenced).ref();
    await Promise.all(idle.map((client) => client.end().catch(() => {})));
  }

  private async open(): Promise<pg.Client> {
    const client = await connect(this.target);
    const forget = () => this.idle.delete(client);
    client.on('end', forget);
    client.on('error', forget);
    return client;
  }

  private async takeOpening(): Promise<pg.Client | undefined> {
    const opening = this.opening;
    this.opening = undefined;
    const client = await opening?.catch(() => undefined);
    (client as unknown as Referenced | undefined)?.ref();
    return client;
  }

  private take(): pg.Client | undefined {
    const [client] = this.idle;
    if (!client) return undefined;
    this.idle.delete(client);
    (client as unknown as Referenced).ref();
    return client;
  }

  private putBack(client: pg.Client): void {
    if (this.closed || this.idle.size >= this.maxIdle) {
      client.end().catch(() => {});
      return;
    }
    (client as unknown as Referenced).unref();
    this.idle.add(client);
  }
}

/**
 * Like withClient, for running SQL files: the session's connection can be replaced mid-way
 * (`reconnect`), and whichever connection it holds at the end is closed.
 */
export async function withSession<T>(
  target: ServerTarget,
  database: string,
  work: (session: SqlSession) => Promise<T>,
  settings: Record<string, string> = {},
): Promise<T> {
  let client = await connect(target, database, settings);
  const session: SqlSession = {
    get client() {
      return client;
    },
    async reconnect() {
      const previous = client;
      client = await connect(target, database, settings);
      await previous.end().catch(() => {});
    },
  };
  try {
    return await work(session);
  } finally {
    await client.end().catch(() => {});
  }
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'EAI_AGAIN', 'ENOENT']);
const INVALID_CATALOG_NAME = '3D000';

/** Where a target's settings are changed, for hints. */
function settingsHint(target: ServerTarget): string {
  switch (target.origin) {
    case 'embedded':
      return 'dbfast server status shows the embedded server; dbfast server stop, then retry, restarts it';
    case 'DBFAST_DATABASE_URL':
      return 'check DBFAST_DATABASE_URL';
    case 'PGHOST':
      return 'check PGHOST, PGPORT and PGUSER (or configure [database] in dbfast.toml)';
    default:
      return `check [${target.origin}] in dbfast.toml`;
  }
}

export function connectionError(error: unknown, target: ServerTarget, database: string): DbfastError {
  const { code, message } = error as { code?: string; message?: string };
  const where = `${target.label}/${database}`;
  if ((code && UNREACHABLE.has(code)) || /timeout/i.test(message ?? '')) {
    return new DbfastError('SERVER_UNREACHABLE', `cannot reach PostgreSQL at ${target.label} (${code ?? message})`, {
      hint: `is the server running? ${settingsHint(target)}`,
      cause: error,
    });
  }
  if (code === '28P01' || code === '28000' || /password must be a string|no password/i.test(message ?? '')) {
    const missing = /must be a string|no password/i.test(message ?? '');
    return new DbfastError(
      'AUTH_FAILED',
      missing ? `the server asks for a password for ${where} and none is configured` : `authentication failed for ${where}`,
      { hint: 'set password_env or password_file in dbfast.toml, PGPASSWORD, or a ~/.pgpass entry', cause: error },
    );
  }
  if (code === INVALID_CATALOG_NAME) {
    return new DbfastError('DATABASE_NOT_FOUND', `database "${database}" does not exist on ${target.label}`, {
      hint: database === target.maintenanceDatabase ? `${settingsHint(target)}: it names the database dbfast connects to` : undefined,
      cause: error,
    });
  }
  return new DbfastError('SERVER_UNREACHABLE', `cannot connect to ${where}: ${message ?? String(error)}`, { cause: error });
}
