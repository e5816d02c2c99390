import { loadConfig } from '../core/config/index.js';
import { embeddedTarget } from '../core/pg/target.js';
import { ensureServer, HOST, SUPERUSER, serverStatus, stopServer } from '../core/server.js';
import type { GlobalOptions } from './main.js';
import { info, printData, printJson } from './output.js';

async function stateDir(globals: GlobalOptions): Promise<string> {
  return (await loadConfig({ configPath: globals.config })).stateDir;
}

function url(port: number, database = 'postgres'): string {
  return embeddedTarget({ host: HOST, port, user: SUPERUSER }).url(database);
}

export async function start(globals: GlobalOptions, options: { port?: number }): Promise<void> {
  const server = await ensureServer(await stateDir(globals), { port: options.port });
  info(`${server.started ? 'started' : 'already running'}: PostgreSQL ${server.version} on ${server.host}:${server.port}`);
}

export async function stop(globals: GlobalOptions): Promise<void> {
  info((await stopServer(await stateDir(globals))) ? 'stopped' : 'not running');
}

export async function status(globals: GlobalOptions, options: { json?: boolean }): Promise<number> {
  const current = await serverStatus(await stateDir(globals));
  if (options.json) {
    printJson({ ...current, url: current.running ? url(current.port!) : null });
  } else if (current.running) {
    printData(`running: PostgreSQL ${current.version} on ${HOST}:${current.port} (pid ${current.pid}, data ${current.paths.dataDir})`);
  } else {
    printData(current.initialized ? `stopped (data ${current.paths.dataDir})` : 'not created yet (starts on first use)');
  }
  return current.running ? 0 : 1;
}

export async function urlCommand(globals: GlobalOptions, database: string): Promise<void> {
  const server = await ensureServer(await stateDir(globals));
  printData(url(server.port, database));
}
