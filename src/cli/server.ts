import { type DbfastConfig, loadConfig } from '../core/config.js';
import { embeddedTarget } from '../core/connection.js';
import { type EnsureServerOptions, ensureServer, HOST, SUPERUSER, serverStatus, stopServer } from '../core/server.js';
import type { GlobalOptions } from './main.js';
import { info, printData, printJson, warn } from './output.js';

function load(globals: GlobalOptions): Promise<DbfastConfig> {
  return loadConfig({ configPath: globals.config });
}

function embeddedOptions(config: DbfastConfig): EnsureServerOptions {
  return { stateDirFromEnv: config.stateDirFromEnv, onWarning: (message) => warn(message) };
}

function url(port: number, database = 'postgres'): string {
  return embeddedTarget({ host: HOST, port, user: SUPERUSER }).url(database);
}

export async function start(globals: GlobalOptions, options: { port?: number }): Promise<void> {
  const config = await load(globals);
  const server = await ensureServer(config.stateDir, { ...embeddedOptions(config), port: options.port });
  info(`${server.started ? 'started' : 'already running'}: PostgreSQL ${server.version} on ${server.host}:${server.port}`);
}

export async function stop(globals: GlobalOptions): Promise<void> {
  info((await stopServer((await load(globals)).stateDir)) ? 'stopped' : 'not running');
}

export async function status(globals: GlobalOptions, options: { json?: boolean }): Promise<number> {
  const current = await serverStatus((await load(globals)).stateDir);
  if (options.json) {
    printJson({ ...current, url: current.running ? url(current.port!) : null });
  } else if (current.running) {
    info(`running: PostgreSQL ${current.version} on ${HOST}:${current.port} (pid ${current.pid}, data ${current.paths.dataDir})`);
  } else {
    info(current.initialized ? `stopped (data ${current.paths.dataDir})` : 'not created yet (starts on first use)');
  }
  return current.running ? 0 : 1;
}

export async function urlCommand(globals: GlobalOptions, database: string): Promise<void> {
  const config = await load(globals);
  const server = await ensureServer(config.stateDir, embeddedOptions(config));
  printData(url(server.port, database));
}
