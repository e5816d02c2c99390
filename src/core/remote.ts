/**
 * Remotes: named PostgreSQL servers in dbfast.toml that dbfast deploys to and backs up. Describing
 * them reads no password and connects nowhere.
 */
import { type DbfastConfig, parseConnectionUrl, type RemoteSettings } from './config/index.js';
import { displayUrl } from './pg/target.js';

export interface RemoteSummary {
  name: string;
  /** Where it connects; a password written into the configured URL shows as `****`. */
  url: string;
  environment?: string;
  requireConfirmation: boolean;
  allowDestructive: boolean;
  backupBeforeDeploy: boolean;
  /** Where its password comes from: `password_env NAME`, `password_file PATH`, `url`, or `PGPASSWORD or ~/.pgpass`. */
  passwordFrom: string;
}

/** The configured remotes in the order of dbfast.toml. */
export function describeRemotes(config: DbfastConfig, env: NodeJS.ProcessEnv): RemoteSummary[] {
  return Object.values(config.remotes).map((remote) => ({
    name: remote.name,
    url: displayUrl(remote, env),
    ...(remote.environment === undefined ? {} : { environment: remote.environment }),
    requireConfirmation: remote.requireConfirmation,
    allowDestructive: remote.allowDestructive,
    backupBeforeDeploy: remote.backupBeforeDeploy,
    passwordFrom: passwordSource(remote, env),
  }));
}

function passwordSource(remote: RemoteSettings, env: NodeJS.ProcessEnv): string {
  if (remote.passwordEnv) return `password_env ${remote.passwordEnv}${env[remote.passwordEnv] === undefined ? ' (not set)' : ''}`;
  if (remote.passwordFile) return `password_file ${remote.passwordFile}`;
  if (remote.url && parseConnectionUrl(remote.url, `${remote.origin}.url`).password !== undefined) return 'url';
  return 'PGPASSWORD or ~/.pgpass';
}
