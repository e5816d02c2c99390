import { type DbfastConfig, loadConfig } from '../core/config/index.js';
import { DbfastError } from '../core/errors.js';
import { probeServer } from '../core/pg/probe.js';
import { configuredTarget, embeddedServerOptions, embeddedTarget } from '../core/pg/target.js';
import { type EnsureServerOptions, ensureServer, HOST, SUPERUSER, serverStatus, stopServer } from '../core/server.js';
import type { GlobalOptions } from './globals.js';
import { info, printData, printJson, warn } from './output.js';

function load(globals: GlobalOptions): Promise<DbfastConfig> {
  return loadConfig({ configPath: globals.config });
}

function embeddedOptions(config: DbfastConfig): EnsureServerOptions {
  return embeddedServerOptions(config, process.env, (message) => warn(message));
}

function url(port: number, database = 'postgres'): string {
  return embeddedTarget({ host: HOST, port, user: SUPERUSER }).url(database);
}

/** start and stop manage the embedded server; a configured one is run by someone else. */
async function refuseConfigured(config: DbfastConfig, command: string): Promise<void> {
  if (config.database === null) return;
  const { label } = await configuredTarget(config.database!, config, process.env);
  throw new DbfastError('USAGE', `dbfast server ${command} manages the embedded server; this project uses the configured server ${label}`, {
    hint: 'start and stop that server where it runs; the embedded one serves only when no server is configured ([database] url or host, DBFAST_DATABASE_URL, PGHOST)',
  });
}

export async function start(globals: GlobalOptions, options: { port?: number }): Promise<void> {
  const config = await load(globals);
  await refuseConfigured(config, 'start');
  const server = await ensureServer(config.stateDir, { ...embeddedOptions(config), port: options.port });
  info(`${server.started ? 'started' : 'already running'}: PostgreSQL ${server.version} on ${server.host}:${server.port}`);
}

export async function stop(globals: GlobalOptions): Promise<void> {
  const config = await load(globals);
  await refuseConfigured(config, 'stop');
  info((await stopServer(config.stateDir, embeddedOptions(config))) ? 'stopped' : 'not running');
}

export async function status(globals: GlobalOptions, options: { json?: boolean }): Promise<number> {
  const config = await load(globals);
  if (config.database !== null) return configuredStatus(config, options);
  const current = await serverStatus(config.stateDir);
  if (options.json) {
    printJson({ embedded: true, ...current, url: current.running ? url(current.port!) : null });
  } else if (current.running) {
    printData(`running: PostgreSQL ${current.version} on ${HOST}:${current.port} (pid ${current.pid}, data ${current.paths.dataDir})`);
  } else {
    printData(current.initialized ? `stopped (data ${current.paths.dataDir})` : 'not created yet (starts on first use)');
  }
  return current.running ? 0 : 1;
}

async function configuredStatus(config: DbfastConfig, options: { json?: boolean }): Promise<number> {
  const target = await configuredTarget(config.database!, config, process.env);
  const probe = await probeServer(target);
  const shown = target.url(target.maintenanceDatabase);
  if (options.json) printJson({ embedded: false, url: shown, address: target.label, ...probe });
  else printData(probe.reachable ? `configured: PostgreSQL ${probe.version} at ${shown}` : `configured: ${shown}, not usable: ${probe.error}`);
  return probe.reachable ? 0 : 1;
}

export async function urlCommand(globals: GlobalOptions, database?: string): Promise<void> {
  const config = await load(globals);
  if (config.database !== null) {
    const target = await configuredTarget(config.database!, config, process.env);
    return printData(target.url(database ?? target.maintenanceDatabase));
  }
  const server = await ensureServer(config.stateDir, embeddedOptions(config));
  printData(url(server.port, database));
}
