/**
 * postgresql:// URLs (libpq's connection URIs). A URL may carry a password, so no message here ever
 * quotes the URL or a part of it that could hold one: problems name where the URL came from.
 */
import { DbfastError } from '../errors.js';

export interface ConnectionUrl {
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  /** The passphrase of the client key (libpq's sslpassword). */
  sslPassword?: string;
  /** Query parameters to keep in URLs dbfast prints (sslmode and friends): never host or a password. */
  params: URLSearchParams;
}

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;

/** `origin` names the URL in errors: `database.url`, `remotes.staging.url`, `DBFAST_DATABASE_URL`. */
export function parseConnectionUrl(text: string, origin: string): ConnectionUrl {
  const invalid = (message: string, hint?: string) => new DbfastError('CONFIG_INVALID', `${origin} ${message}`, { hint });
  // Only a scheme followed by `//` is ever shown: in `user:password@host` the "scheme" is the user name.
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)?.[1];
  const url = scheme === undefined ? null : urlOrNull(text);
  if (url === null) throw invalid('is not a valid postgresql:// URL');
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw invalid(`must start with postgresql://, not ${scheme}://`);
  }
  const params = new URLSearchParams(url.searchParams);
  const sslmode = params.get('sslmode');
  if (sslmode !== null && !(SSL_MODES as readonly string[]).includes(sslmode)) {
    // Not quoted: whatever was written there could be anything, a password pasted in the wrong place included.
    throw invalid('has an unknown sslmode', `sslmode is one of ${SSL_MODES.join(', ')}`);
  }
  // libpq accepts ?host=, ?password= and ?sslpassword= (the client key's passphrase); they are used,
  // and never copied into the URLs dbfast prints.
  const host = params.get('host') ?? undefined;
  const queryPassword = params.get('password') ?? undefined;
  const sslPassword = params.get('sslpassword') ?? undefined;
  params.delete('host');
  params.delete('password');
  params.delete('sslpassword');
  try {
    return {
      host: (host ?? (url.hostname ? decodeURIComponent(url.hostname) : undefined))?.replace(/^\[(.*)\]$/, '$1'),
      port: url.port ? Number(url.port) : undefined,
      user: url.username ? decodeURIComponent(url.username) : undefined,
      password: url.password ? decodeURIComponent(url.password) : queryPassword,
      database: url.pathname.length > 1 ? decodeURIComponent(url.pathname.slice(1)) : undefined,
      ...(sslPassword === undefined ? {} : { sslPassword }),
      params,
    };
  } catch {
    throw invalid('is not a valid postgresql:// URL: it has a malformed %-escape');
  }
}

function urlOrNull(text: string): URL | null {
  try {
    return new URL(text);
  } catch {
    return null;
  }
}
