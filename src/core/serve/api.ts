/**
 * `dbfast serve`: IntegreSQL's API v1 (existing clients work unchanged) and dbfast's own, which
 * seeds from the project's repository, so that a client needs nothing but the server's URL.
 */
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { DbfastError, isDbfastError } from '../errors.js';
import { withClient } from '../pg/client.js';
import type { Project } from '../project.js';
import { chooseStrategy, SERVER_COPYING_COLUMNS, type ServerCopyingRow, serverCopyingFrom } from '../strategy.js';
import { createApi, HttpError, type Route } from './http.js';
import { type PoolSettings, TemplateManager } from './templates.js';

export interface ServeOptions extends Partial<PoolSettings> {
  /** Default 127.0.0.1; any other than loopback needs `token`. */
  host?: string;
  /** Default INTEGRESQL_PORT, else 5000; 0 for a free one. */
  port?: number;
  /** Default DBFAST_SERVE_TOKEN; required unless `host` is a loopback address. */
  token?: string;
  /** Where INTEGRESQL_* and DBFAST_SERVE_TOKEN are read; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Called with errors behind 500 answers and failed background copies. */
  onError?: (error: unknown) => void;
}

export interface RunningServe {
  /** `http://host:port`. */
  url: string;
  port: number;
  /** Graceful: stops accepting, lets running requests finish (up to `graceMs`), waits for copies being made. */
  close(graceMs?: number): Promise<void>;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Pool settings from `options`, else IntegreSQL's variables where they mean the same, else its
 * defaults (per template: as many ready copies as CPUs, at most 4 per CPU).
 */
export function poolSettings(options: Partial<PoolSettings>, env: NodeJS.ProcessEnv = process.env): PoolSettings {
  const cpus = availableParallelism();
  const initialPoolSize = options.initialPoolSize ?? variable(env, 'INTEGRESQL_TEST_INITIAL_POOL_SIZE', cpus);
  return {
    initialPoolSize,
    maxPoolSize: Math.max(initialPoolSize, 1, options.maxPoolSize ?? variable(env, 'INTEGRESQL_TEST_MAX_POOL_SIZE', cpus * 4)),
    maxParallel: Math.max(1, options.maxParallel ?? variable(env, 'INTEGRESQL_POOL_MAX_PARALLEL_TASKS', cpus)),
    finalizeTimeoutMs: options.finalizeTimeoutMs ?? variable(env, 'INTEGRESQL_TEMPLATE_FINALIZE_TIMEOUT_MS', 60_000),
    getTimeoutMs: options.getTimeoutMs ?? variable(env, 'INTEGRESQL_TEST_DB_GET_TIMEOUT_MS', 60_000),
    minimalLifetimeMs: options.minimalLifetimeMs ?? variable(env, 'INTEGRESQL_TEST_DB_MINIMAL_LIFETIME_MS', 250),
  };
}

function variable(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  if (!/^\d{1,9}$/.test(text)) throw new DbfastError('USAGE', `${name} must be a whole number, not "${text}"`);
  return Number(text);
}

/** Starts serving `project`'s server (the embedded one is started first); resolves once it listens. */
export async function startServe(project: Project, options: ServeOptions = {}): Promise<RunningServe> {
  const env = options.env ?? process.env;
  const settings = poolSettings(options, env);
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? variable(env, 'INTEGRESQL_PORT', 5000);
  const token = options.token ?? (env.DBFAST_SERVE_TOKEN || undefined);
  if (!isLoopback(host) && !token) {
    throw new DbfastError('USAGE', `serving on ${host} needs a token: anyone who can reach it could drop databases`, {
      hint: 'set DBFAST_SERVE_TOKEN; clients send it as Authorization: Bearer <token>',
    });
  }
  const target = await project.server();
  const server = await withClient(target, async (admin) => {
    const { rows } = await admin.query<ServerCopyingRow>(`SELECT ${SERVER_COPYING_COLUMNS}`);
    return serverCopyingFrom(rows[0]!);
  });
  const { strategy } = chooseStrategy(server, project.config.performance.cloneStrategy);
  const manager = await TemplateManager.open(target, settings, { strategy, onError: options.onError });
  const environments = new Map<string, Project>();
  const api = createApi({ routes: [...integresqlRoutes(manager), ...dbfastRoutes(project, environments)], token, onError: options.onError });
  await new Promise<void>((resolve, reject) => {
    api.server.once('error', reject);
    api.server.listen(port, host, () => {
      api.server.off('error', reject);
      // Listening, an error (too many open files on accept) is reported, never a crash.
      api.server.on('error', (error) => options.onError?.(error));
      resolve();
    });
  }).catch(async (error: NodeJS.ErrnoException) => {
    await manager.close();
    if (error.code === 'EADDRINUSE') {
      throw new DbfastError('PORT_IN_USE', `port ${port} on ${host} is in use`, { hint: 'choose another with --port or INTEGRESQL_PORT' });
    }
    throw error;
  });
  const listening = (api.server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${listening}`,
    port: listening,
    async close(graceMs = 10_000) {
      await api.shutdown(graceMs);
      await manager.close();
      for (const environment of environments.values()) await environment.close();
    },
  };
}

function integresqlRoutes(manager: TemplateManager): Route[] {
  const tests = '/api/v1/templates/:hash/tests';
  const unlock: Route['handle'] = async ({ params }) => {
    await manager.unlock(params[0]!, testId(params[1]!));
    return { status: 204 };
  };
  return [
    {
      method: 'POST',
      path: '/api/v1/templates',
      async handle({ json }) {
        const body = await json();
        const hash = (body as { hash?: unknown } | null)?.hash;
        if (typeof hash !== 'string' || hash === '') throw new HttpError(400, 'hash is required');
        return { status: 200, body: { database: await manager.initialize(hash) } };
      },
    },
    {
      method: 'PUT',
      path: '/api/v1/templates/:hash',
      async handle({ params }) {
        await manager.finalize(params[0]!);
        return { status: 204 };
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/templates/:hash',
      async handle({ params }) {
        await manager.discard(params[0]!);
        return { status: 204 };
      },
    },
    {
      method: 'GET',
      path: tests,
      async handle({ params, signal }) {
        const { id, ...database } = await manager.getTestDatabase(params[0]!, signal);
        return { status: 200, body: { id, database } };
      },
    },
    { method: 'POST', path: `${tests}/:id/unlock`, handle: unlock },
    // Deprecated by IntegreSQL, still what @devoxa/integresql-client calls to return a database.
    { method: 'DELETE', path: `${tests}/:id`, handle: unlock },
    {
      method: 'POST',
      path: `${tests}/:id/recreate`,
      async handle({ params }) {
        await manager.recreate(params[0]!, testId(params[1]!));
        return { status: 204 };
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/admin/templates',
      async handle() {
        await manager.discardAll();
        return { status: 204 };
      },
    },
  ];
}

function testId(text: string): number {
  if (!/^\d{1,9}$/.test(text)) throw new HttpError(400, 'invalid test database ID');
  return Number(text);
}

/** dbfast's own: a clone of an environment's template, rebuilt first when its files changed; dropping one. `environments`: projects opened per environment, closed with the server. */
function dbfastRoutes(project: Project, environments: Map<string, Project>): Route[] {
  const forEnvironment = (env: string | undefined) => {
    if (env === undefined) return project;
    let found = environments.get(env);
    if (!found) {
      found = project.withEnvironment(env);
      environments.set(env, found);
    }
    return found;
  };
  return [
    {
      method: 'POST',
      path: '/api/dbfast/v1/seed',
      async handle({ json }) {
        const body = ((await json()) ?? {}) as { env?: unknown };
        if (typeof body !== 'object' || (body.env !== undefined && typeof body.env !== 'string')) {
          throw new HttpError(400, 'the body must be {"env": "<environment>"} or empty');
        }
        const result = await asHttp(() => forEnvironment(body.env as string | undefined).seed());
        return { status: 200, body: result };
      },
    },
    {
      method: 'DELETE',
      path: '/api/dbfast/v1/databases/:name',
      async handle({ params }) {
        const name = params[0]!;
        const clones = await asHttp(() => project.list({ all: true }));
        if (!clones.some((clone) => clone.name === name)) throw new HttpError(404, `no clone named "${name}" (dbfast drops only the clones it made)`);
        await asHttp(() => project.drop(name));
        return { status: 204 };
      },
    },
  ];
}

/** Usage errors (an unknown environment, a bad name) are the client's: 400; the rest, a failed build included, 500 with file and line. */
async function asHttp<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isDbfastError(error)) {
      const status = error.code === 'USAGE' || error.code === 'ENVIRONMENT_REQUIRED' ? 400 : 500;
      throw new HttpError(status, error.hint ? `${error.located} (${error.hint})` : error.located);
    }
    throw error;
  }
}
