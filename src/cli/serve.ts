import { availableParallelism } from 'node:os';
import { DbfastError } from '../core/errors.js';
import type { PoolSettings } from '../core/serve/templates.js';
import { startServe } from '../core/serve/api.js';
import type { GlobalOptions } from './globals.js';
import { dim, formatError, info, printData, printJson } from './output.js';
import { openProject } from './project.js';
import { untilStopped } from './signals.js';

interface ServeFlags {
  port?: number;
  host: string;
  initialPoolSize?: number;
  maxPoolSize?: number;
  json?: boolean;
}

/**
 * Serves until SIGINT or SIGTERM; prints its URL on stdout (the only line there, so `$(...)` and
 * `--port 0` work), the rest on stderr. IntegreSQL's variables apply where they mean the same.
 */
export async function serve(globals: GlobalOptions, flags: ServeFlags): Promise<void> {
  const env = process.env;
  const cpus = availableParallelism();
  const initialPoolSize = flags.initialPoolSize ?? variable(env, 'INTEGRESQL_TEST_INITIAL_POOL_SIZE', cpus);
  const settings: PoolSettings = {
    initialPoolSize,
    maxPoolSize: Math.max(initialPoolSize, 1, flags.maxPoolSize ?? variable(env, 'INTEGRESQL_TEST_MAX_POOL_SIZE', cpus * 4)),
    maxParallel: Math.max(1, variable(env, 'INTEGRESQL_POOL_MAX_PARALLEL_TASKS', cpus)),
    finalizeTimeoutMs: variable(env, 'INTEGRESQL_TEMPLATE_FINALIZE_TIMEOUT_MS', 60_000),
    getTimeoutMs: variable(env, 'INTEGRESQL_TEST_DB_GET_TIMEOUT_MS', 60_000),
    minimalLifetimeMs: variable(env, 'INTEGRESQL_TEST_DB_MINIMAL_LIFETIME_MS', 250),
  };
  const verbose = Boolean(globals.verbose || env.DBFAST_DEBUG);
  const project = await openProject(globals);
  const running = await startServe(project, {
    ...settings,
    host: flags.host,
    port: flags.port ?? variable(env, 'INTEGRESQL_PORT', 5000),
    token: env.DBFAST_SERVE_TOKEN || undefined,
    onError: (error) => info(formatError(error, verbose)),
  });
  if (flags.json) printJson({ url: running.url, port: running.port });
  else printData(running.url);
  info(dim(`serving IntegreSQL API v1 and /api/dbfast/v1 on ${running.url} (Ctrl-C to stop)`));
  await untilStopped();
  info(dim('stopping: finishing requests and copies under way'));
  await running.close();
  await project.close();
}

function variable(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  if (!/^\d+$/.test(text)) throw new DbfastError('USAGE', `${name} must be a whole number, not "${text}"`);
  return Number(text);
}
