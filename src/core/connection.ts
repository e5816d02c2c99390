/**
 * The one place dbfast opens connections: resolves the configured or embedded server into a
 * target, connects with node-postgres (which applies the libpq PG* variables and ~/.pgpass), and
 * turns connection failures into DbfastErrors that never contain a password.
 */
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import pg from 'pg';
import pgPass from 'pgpass';
import { CONFIG_FILE_NAME, type DatabaseSettings, type DbfastConfig, displayPath, parseConnectionUrl } from './config/index.js';
import { DbfastError } from './errors.js';
import type { SqlSession } from './sql/execute.js';

export interface ServerTarget {
  embedded: boolean;
  /** `user@host:port`, for messages; never a password. */
  label: string;
  /** The database dbfast connects to for CREATE/DROP DATABASE. */
  maintenanceDatabase: string;
  clientConfig(database?: string): pg.ClientConfig;
  /** A connection URL for `database`, without the password. */
  url(database: string): string;
}

interface Endpoint {
  host: string;
  port: number;
  user: string;
  database: string;
  password?: string;
  /** Query parameters to keep in URLs (sslmode and friends). */
  params: URLSearchParams;
}

const CONNECT_TIMEOUT_MS = 10_000;

export async function resolveTarget(config: DbfastConfig, env: NodeJS.ProcessEnv = process.env): Promise<ServerTarget> {
  if (config.database === null) {
    const { ensureServer } = await import('./server.js');
    return embeddedTarget(await ensureServer(config.stateDir));
  }
  const configFile = config.configPath ? displayPath(config.configPath) : CONFIG_FILE_NAME;
  return targetFor(await endpointFor(config.database, configFile, env), false);
}

/** The embedded server: superuser `postgres`, trust authentication on 127.0.0.1. */
export function embeddedTarget(server: { host: string; port: number; user: string }): ServerTarget {
  return targetFor({ ...server, database: 'postgres', params: new URLSearchParams() }, true);
}

export async function endpointFor(settings: DatabaseSettings, configFile: string, env = process.env): Promise<Endpoint> {
  const fromUrl = settings.url ? parseConnectionUrl(settings.url, 'database.url') : undefined;
  return {
    host: settings.host ?? fromUrl?.host ?? env.PGHOST ?? env.PGHOSTADDR ?? 'localhost',
    port: settings.port ?? fromUrl?.port ?? (Number(env.PGPORT) || 5432),
    user: settings.user ?? fromUrl?.user ?? env.PGUSER ?? userInfo().username,
    database: settings.database ?? fromUrl?.database ?? env.PGDATABASE ?? 'postgres',
    password: (await passwordFor(settings, configFile, env)) ?? fromUrl?.password ?? env.PGPASSWORD,
    params: fromUrl?.params ?? new URLSearchParams(),
  };
}

async function passwordFor(settings: DatabaseSettings, configFile: string, env: NodeJS.ProcessEnv) {
  if (settings.passwordEnv) {
    const value = env[settings.passwordEnv];
    if (value === undefined) {
      throw new DbfastError('CONFIG_INVALID', `database.password_env names ${settings.passwordEnv}, which is not set`, {
        file: configFile,
        hint: `export ${settings.passwordEnv}=... or use password_file or ~/.pgpass`,
      });
    }
    return value;
  }
  if (settings.passwordFile) {
    const text = await readFile(settings.passwordFile, 'utf8').catch((error) => {
      throw new DbfastError('CONFIG_INVALID', `database.password_file cannot be read: ${settings.passwordFile}`, {
        file: configFile,
        cause: error,
      });
    });
    return text.replace(/\r?\n$/, '');
  }
  return undefined;
}

function targetFor(endpoint: Endpoint, embedded: boolean): ServerTarget {
  const hostInUrl = endpoint.host.startsWith('/') ? '' : endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host;
  return {
    embedded,
    label: `${endpoint.user}@${endpoint.host}:${endpoint.port}`,
    maintenanceDatabase: endpoint.database,
    clientConfig: (database = endpoint.database) => ({
      host: endpoint.host,
      port: endpoint.port,
      user: endpoint.user,
      // Without a configured password, ~/.pgpass (or PGPASSFILE) is asked, as libpq does.
      // node-postgres calls it with the connection parameters and accepts undefined (@types/pg is narrower).
      password: endpoint.password ?? (passwordFromPgpass as () => Promise<string>),
      database,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      ...(endpoint.params.has('sslmode') && endpoint.params.get('sslmode') !== 'disable'
        ? { ssl: { rejectUnauthorized: ['verify-ca', 'verify-full'].includes(endpoint.params.get('sslmode')!) } }
        : {}),
    }),
    url: (database) => {
      const params = new URLSearchParams(endpoint.params);
      if (!hostInUrl) params.set('host', endpoint.host);
      const query = params.size ? `?${params}` : '';
      return `postgresql://${encodeURIComponent(endpoint.user)}@${hostInUrl}:${endpoint.port}/${encodeURIComponent(database)}${query}`;
    },
  };
}

function passwordFromPgpass(connection: { host?: string; port?: number; user?: string; database?: string }) {
  return new Promise<string | undefined>((resolve) => pgPass(connection, resolve));
}

export async function connect(target: ServerTarget, database?: string): Promise<pg.Client> {
  const client = new pg.Client(target.clientConfig(database));
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

/** Opens a connection, runs `work`, and always closes it. */
export async function withClient<T>(
  target: ServerTarget,
  database: string | undefined,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = await connect(target, database);
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Like withClient, for running SQL files: the session's connection can be replaced mid-way
 * (`reconnect`), and whichever connection it holds at the end is closed.
 */
export async function withSession<T>(target: ServerTarget, database: string, work: (session: SqlSession) => Promise<T>): Promise<T> {
  let client = await connect(target, database);
  const session: SqlSession = {
    get client() {
      return client;
    },
    async reconnect() {
      const previous = client;
      client = await connect(target, database);
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

export function connectionError(error: unknown, target: ServerTarget, database: string): DbfastError {
  const { code, message } = error as { code?: string; message?: string };
  const where = `${target.label}/${database}`;
  if ((code && UNREACHABLE.has(code)) || /timeout/i.test(message ?? '')) {
    return new DbfastError('SERVER_UNREACHABLE', `cannot reach PostgreSQL at ${target.label} (${code ?? message})`, {
      hint: 'is the server running? check [database] in dbfast.toml, DBFAST_DATABASE_URL or PGHOST/PGPORT',
      cause: error,
    });
  }
  if (code === '28P01' || code === '28000' || /password must be a string|no password/i.test(message ?? '')) {
    const missing = /must be a string|no password/i.test(message ?? '');
    return new DbfastError(
      'AUTH_FAILED',
      missing ? `the server asks for a password for ${where} and none is configured` : `authentication failed for ${where}`,
      { hint: 'set database.password_env or password_file in dbfast.toml, PGPASSWORD, or a ~/.pgpass entry', cause: error },
    );
  }
  if (code === '3D000') {
    return new DbfastError('SERVER_UNREACHABLE', `database "${database}" does not exist on ${target.label}`, { cause: error });
  }
  return new DbfastError('SERVER_UNREACHABLE', `cannot connect to ${where}: ${message ?? String(error)}`, { cause: error });
}
