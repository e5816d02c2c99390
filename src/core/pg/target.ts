/**
 * Where a server is and how to log in to it: the embedded server, `[database]` (or
 * DBFAST_DATABASE_URL, or the libpq PG* variables) and later each remote resolve to one
 * ServerTarget, which is what every server-facing function takes. node-postgres applies the PG*
 * variables; passwords come from password_env, password_file, the URL, PGPASSWORD or ~/.pgpass,
 * and never appear in a label or URL dbfast prints.
 */
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import type pg from 'pg';
import pgPass from 'pgpass';
import { CONFIG_FILE_NAME, type DatabaseSettings, type DbfastConfig, displayPath, parseConnectionUrl } from '../config/index.js';
import { DbfastError } from '../errors.js';
import type { ToolConnection } from '../tools.js';
import type { EnsureServerOptions } from '../server.js';

export interface ServerTarget {
  embedded: boolean;
  /** `user@host:port`, for messages; never a password. */
  label: string;
  /** Where the settings came from, for messages: `embedded`, `database`, `DBFAST_DATABASE_URL`, `PGHOST`. */
  origin: string;
  /** The database dbfast connects to for CREATE/DROP DATABASE. */
  maintenanceDatabase: string;
  clientConfig(database?: string): pg.ClientConfig;
  /** A connection URL for `database`, without the password. */
  url(database: string): string;
  /** How pg_dump and pg_restore reach `database`: the same server, login and TLS settings, password resolved. */
  toolConnection(database: string): Promise<ToolConnection>;
}

/** Where a server is, as far as the settings and the libpq variables say, without its password. */
interface Location {
  host: string;
  port: number;
  user: string;
  database: string;
  /** Query parameters to keep in URLs (sslmode and friends). */
  params: URLSearchParams;
}

interface Endpoint extends Location {
  password?: string;
  connectTimeoutMs?: number;
  /** node-postgres' TLS options, from sslmode and the certificate files; absent without TLS. */
  ssl?: ConnectionOptions;
  /** libpq's own TLS settings, certificate paths resolved, for PostgreSQL's programs. */
  libpqSsl?: ToolConnection['ssl'];
  /** The passphrase of an encrypted client key, which libpq takes only as a connection parameter. */
  hasKeyPassphrase?: boolean;
}

const SSL_FILES = ['sslrootcert', 'sslcert', 'sslkey'] as const;

/** How long one connection attempt may take unless connect_timeout_ms says otherwise. */
export const CONNECT_TIMEOUT_MS = 10_000;

/** The project's server: the configured one, or the embedded one (started first; `onWarning` hears that it moved to another port). */
export async function resolveTarget(
  config: DbfastConfig,
  env: NodeJS.ProcessEnv,
  options: { onWarning?: (message: string) => void } = {},
): Promise<ServerTarget> {
  if (config.database === null) {
    const { ensureServer } = await import('../server.js');
    return embeddedTarget(await ensureServer(config.stateDir, embeddedServerOptions(config, env, options.onWarning)));
  }
  return configuredTarget(config.database, config, env);
}

/** What the configuration says about the embedded server: where its programs come from, how to name its state folder. */
export function embeddedServerOptions(config: DbfastConfig, env: NodeJS.ProcessEnv, onWarning?: (message: string) => void): EnsureServerOptions {
  return { env, onWarning, stateDirFromEnv: config.stateDirFromEnv, binDir: config.tools.pgBinDir };
}

/** A configured server, without connecting: its label and URLs are known before any connection. */
export async function configuredTarget(settings: DatabaseSettings, config: DbfastConfig, env: NodeJS.ProcessEnv): Promise<ServerTarget> {
  const configFile = config.configPath ? displayPath(config.configPath, config.projectDir) : CONFIG_FILE_NAME;
  return targetFor(await endpointFor(settings, { configFile, projectDir: config.projectDir }, env), settings.origin);
}

/** The embedded server: superuser `postgres`, trust authentication on 127.0.0.1. */
export function embeddedTarget(server: { host: string; port: number; user: string }): ServerTarget {
  return targetFor({ ...server, database: 'postgres', params: new URLSearchParams() }, 'embedded');
}

/**
 * A configured server's URL as dbfast prints it, without connecting or reading its password: the
 * password is shown as `****` when the configured URL carries one, else left out.
 */
export function displayUrl(settings: DatabaseSettings, env: NodeJS.ProcessEnv): string {
  const { location, urlPassword } = locationFor(settings, env);
  return urlFor(location, location.database, urlPassword === undefined ? '' : ':****');
}

async function endpointFor(settings: DatabaseSettings, where: { configFile: string; projectDir: string }, env: NodeJS.ProcessEnv): Promise<Endpoint> {
  const { location, urlPassword, sslPassword } = locationFor(settings, env);
  const ssl = await tlsOptions(location.params, settings, where, sslPassword);
  return {
    ...location,
    ...(location.params.has('sslmode') ? { libpqSsl: libpqSsl(location.params, where.projectDir), hasKeyPassphrase: sslPassword !== undefined } : {}),
    password: (await passwordFor(settings, where.configFile, env)) ?? urlPassword ?? env.PGPASSWORD,
    ...(settings.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: settings.connectTimeoutMs }),
    ...(ssl ? { ssl } : {}),
  };
}

/**
 * libpq's sslmode for node-postgres, which cannot fall back to plain text: allow and prefer ask for
 * TLS like require. require checks the certificate only when a CA file is given (as libpq does);
 * verify-ca checks it against the CA; verify-full also checks that it names the host.
 */
async function tlsOptions(
  params: URLSearchParams,
  settings: DatabaseSettings,
  where: { configFile: string; projectDir: string },
  passphrase: string | undefined,
): Promise<ConnectionOptions | undefined> {
  const mode = params.get('sslmode');
  if (mode === null || mode === 'disable') return undefined;
  const files: Partial<Record<(typeof SSL_FILES)[number], string>> = {};
  for (const key of SSL_FILES) {
    const file = params.get(key);
    if (file === null) continue;
    const path = resolvePath(where.projectDir, file);
    files[key] = await readFile(path, 'utf8').catch((error) => {
      throw new DbfastError('CONFIG_INVALID', `${sectionOf(settings)}.${key} cannot be read: ${path}`, { file: where.configFile, cause: error });
    });
  }
  const verify = mode === 'verify-ca' || mode === 'verify-full' || (mode === 'require' && files.sslrootcert !== undefined);
  return {
    rejectUnauthorized: verify,
    ...(files.sslrootcert === undefined ? {} : { ca: files.sslrootcert }),
    ...(files.sslcert === undefined ? {} : { cert: files.sslcert }),
    ...(files.sslkey === undefined ? {} : { key: files.sslkey }),
    ...(passphrase === undefined ? {} : { passphrase }),
    // verify-ca trusts any name on a certificate the CA signed.
    ...(verify && mode !== 'verify-full' ? { checkServerIdentity: () => undefined } : {}),
  };
}

function libpqSsl(params: URLSearchParams, projectDir: string): ToolConnection['ssl'] {
  const ssl: NonNullable<ToolConnection['ssl']> = { mode: params.get('sslmode') ?? 'disable' };
  for (const key of SSL_FILES) {
    const file = params.get(key);
    if (file !== null) ssl[key] = resolvePath(projectDir, file);
  }
  return ssl;
}

/** The sslmode and certificate keys of dbfast.toml win over the URL's parameters, and show in the URLs dbfast prints. */
function withSslSettings(params: URLSearchParams, settings: DatabaseSettings): URLSearchParams {
  const merged = new URLSearchParams(params);
  for (const key of ['sslmode', ...SSL_FILES] as const) {
    const value = settings[key];
    if (value !== undefined) merged.set(key, value);
  }
  return merged;
}

function locationFor(settings: DatabaseSettings, env: NodeJS.ProcessEnv): { location: Location; urlPassword?: string; sslPassword?: string } {
  const fromUrl = settings.url ? parseConnectionUrl(settings.url, settings.origin === 'DBFAST_DATABASE_URL' ? settings.origin : `${settings.origin}.url`) : undefined;
  return {
    location: {
      host: settings.host ?? fromUrl?.host ?? env.PGHOST ?? env.PGHOSTADDR ?? 'localhost',
      port: settings.port ?? fromUrl?.port ?? (Number(env.PGPORT) || 5432),
      user: settings.user ?? fromUrl?.user ?? env.PGUSER ?? userInfo().username,
      database: settings.database ?? fromUrl?.database ?? env.PGDATABASE ?? 'postgres',
      params: withSslSettings(fromUrl?.params ?? new URLSearchParams(), settings),
    },
    ...(fromUrl?.password === undefined ? {} : { urlPassword: fromUrl.password }),
    ...(fromUrl?.sslPassword === undefined ? {} : { sslPassword: fromUrl.sslPassword }),
  };
}

/** The dbfast.toml table a setting is written in: a URL from the environment still takes these from [database]. */
function sectionOf(settings: DatabaseSettings): string {
  return settings.origin === 'DBFAST_DATABASE_URL' || settings.origin === 'PGHOST' ? 'database' : settings.origin;
}

async function passwordFor(settings: DatabaseSettings, configFile: string, env: NodeJS.ProcessEnv) {
  const section = sectionOf(settings);
  if (settings.passwordEnv) {
    const value = env[settings.passwordEnv];
    if (value === undefined) {
      throw new DbfastError('CONFIG_INVALID', `${section}.password_env names ${settings.passwordEnv}, which is not set`, {
        file: configFile,
        hint: `export ${settings.passwordEnv}=... or use password_file or ~/.pgpass`,
      });
    }
    return value;
  }
  if (settings.passwordFile) {
    const text = await readFile(settings.passwordFile, 'utf8').catch((error) => {
      throw new DbfastError('CONFIG_INVALID', `${section}.password_file cannot be read: ${settings.passwordFile}`, {
        file: configFile,
        cause: error,
      });
    });
    return text.replace(/\r?\n$/, '');
  }
  return undefined;
}

function targetFor(endpoint: Endpoint, origin: string): ServerTarget {
  return {
    embedded: origin === 'embedded',
    label: `${endpoint.user}@${endpoint.host}:${endpoint.port}`,
    origin,
    maintenanceDatabase: endpoint.database,
    clientConfig: (database = endpoint.database) => ({
      host: endpoint.host,
      port: endpoint.port,
      user: endpoint.user,
      // Without a configured password, ~/.pgpass (or PGPASSFILE) is asked, as libpq does.
      // node-postgres calls it with the connection parameters and accepts undefined (@types/pg is narrower).
      password: endpoint.password ?? (passwordFromPgpass as () => Promise<string>),
      database,
      connectionTimeoutMillis: endpoint.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
      ...(endpoint.ssl ? { ssl: endpoint.ssl } : {}),
    }),
    url: (database) => urlFor(endpoint, database),
    toolConnection: async (database) => {
      if (endpoint.hasKeyPassphrase) {
        throw new DbfastError('CONFIG_INVALID', `${origin}: pg_dump and pg_restore cannot be given sslpassword without showing it to every user of this machine`, {
          hint: 'use a client key without a passphrase, readable only by you',
        });
      }
      const password = endpoint.password ?? (await passwordFromPgpass({ ...endpoint, database }));
      return {
        host: endpoint.host,
        port: endpoint.port,
        user: endpoint.user,
        database,
        ...(password === undefined ? {} : { password }),
        ...(endpoint.libpqSsl ? { ssl: endpoint.libpqSsl } : {}),
        connectTimeoutSeconds: Math.ceil((endpoint.connectTimeoutMs ?? CONNECT_TIMEOUT_MS) / 1000),
      };
    },
  };
}

/** `passwordPart` is `''` or `':****'`: a real password is never put into a URL. */
function urlFor(location: Location, database: string, passwordPart = ''): string {
  const hostInUrl = location.host.startsWith('/') ? '' : location.host.includes(':') ? `[${location.host}]` : location.host;
  const params = new URLSearchParams(location.params);
  if (!hostInUrl) params.set('host', location.host);
  const query = params.size ? `?${params}` : '';
  return `postgresql://${encodeURIComponent(location.user)}${passwordPart}@${hostInUrl}:${location.port}/${encodeURIComponent(database)}${query}`;
}

function passwordFromPgpass(connection: { host?: string; port?: number; user?: string; database?: string }) {
  return new Promise<string | undefined>((resolve) => pgPass(connection, resolve));
}
