/**
 * startServe as a library: settings from options, IntegreSQL's variables and defaults; bad values
 * and a taken port are clear errors before anything is served. (The HTTP API itself:
 * test/cli/serve.test.ts, against a serve process.)
 */
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { rm } from 'node:fs/promises';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { isDbfastError } from '../../../src/core/errors.js';
import { Project } from '../../../src/core/project.js';
import { isLoopback, poolSettings, startServe } from '../../../src/core/serve/api.js';
import { tempRepo } from '../../helpers/repo.js';

const roots: string[] = [];
afterAll(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function project(): Promise<Project> {
  const root = await tempRepo({ 'db/0_schema/01.sql': 'CREATE TABLE t (id int);\n' });
  roots.push(root);
  return Project.open({ cwd: root, env: { DBFAST_DATABASE_URL: `postgresql://postgres@127.0.0.1:${inject('serverPort')}/postgres` } });
}

describe('poolSettings', () => {
  it('takes options first, then the INTEGRESQL_* variables, then IntegreSQL defaults (CPUs, 4 per CPU)', () => {
    const cpus = availableParallelism();
    expect(poolSettings({}, {})).toEqual({
      initialPoolSize: cpus,
      maxPoolSize: cpus * 4,
      maxParallel: cpus,
      finalizeTimeoutMs: 60_000,
      getTimeoutMs: 60_000,
      minimalLifetimeMs: 250,
    });
    const env = { INTEGRESQL_TEST_INITIAL_POOL_SIZE: '3', INTEGRESQL_TEST_MAX_POOL_SIZE: '7', INTEGRESQL_TEST_DB_GET_TIMEOUT_MS: '500' };
    expect(poolSettings({}, env)).toMatchObject({ initialPoolSize: 3, maxPoolSize: 7, getTimeoutMs: 500 });
    expect(poolSettings({ initialPoolSize: 5 }, env)).toMatchObject({ initialPoolSize: 5, maxPoolSize: 7 });
    // The maximum is never below the initial size, nor 0.
    expect(poolSettings({ initialPoolSize: 9, maxPoolSize: 2 }, {})).toMatchObject({ maxPoolSize: 9 });
    expect(poolSettings({ initialPoolSize: 0, maxPoolSize: 0 }, {})).toMatchObject({ initialPoolSize: 0, maxPoolSize: 1 });
  });

  it('refuses a variable that is not a whole number, naming it', () => {
    expect(() => poolSettings({}, { INTEGRESQL_TEST_MAX_POOL_SIZE: 'lots' })).toThrow(/INTEGRESQL_TEST_MAX_POOL_SIZE must be a whole number, not "lots"/);
    expect(() => poolSettings({}, { INTEGRESQL_TEST_INITIAL_POOL_SIZE: '-1' })).toThrow(/INTEGRESQL_TEST_INITIAL_POOL_SIZE/);
  });
});

describe('startServe', () => {
  it('is loopback-only without a token', async () => {
    expect(['127.0.0.1', '127.1.2.3', '::1', 'localhost'].every(isLoopback)).toBe(true);
    expect(['0.0.0.0', '::', '10.0.0.1', 'example.com'].some(isLoopback)).toBe(false);
    const error = await startServe(await project(), { host: '0.0.0.0', port: 0, env: {} }).catch((caught) => caught);
    expect(isDbfastError(error, 'USAGE')).toBe(true);
    expect(error.hint).toMatch(/DBFAST_SERVE_TOKEN/);
  });

  it('a bad INTEGRESQL_PORT is a usage error; a taken port is PORT_IN_USE, and nothing is left holding the server', async () => {
    const bad = await startServe(await project(), { env: { INTEGRESQL_PORT: 'http' } }).catch((caught) => caught);
    expect(isDbfastError(bad, 'USAGE')).toBe(true);
    expect(bad.message).toMatch(/INTEGRESQL_PORT/);

    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    const opened = await project();
    try {
      const error = await startServe(opened, { port, env: {} }).catch((caught) => caught);
      expect(isDbfastError(error, 'PORT_IN_USE')).toBe(true);
      expect(error.message).toBe(`port ${port} on 127.0.0.1 is in use`);
    } finally {
      taken.close();
    }
    // The failed start released the server: another one starts and answers.
    const running = await startServe(opened, { port: 0, env: {}, initialPoolSize: 0 });
    try {
      const health = await fetch(`${running.url}/healthz`);
      expect(await health.json()).toEqual({ status: 'ok' });
    } finally {
      await running.close();
      await opened.close();
    }
  });
});
