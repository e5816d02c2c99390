import { randomBytes } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { Project } from '../../../src/core/project.js';
import { query } from '../../helpers/database.js';
import { tempRepo } from '../../helpers/repo.js';

const serverUrl = () => `postgresql://postgres@127.0.0.1:${inject('serverPort')}/postgres`;

/** Polls the server until `done` settles; returns the most CREATE DATABASE ... TEMPLATE `template` seen running at once. */
async function mostConcurrentClones(template: string, done: Promise<unknown>): Promise<number> {
  let settled = false;
  done.finally(() => (settled = true)).catch(() => {});
  let most = 0;
  while (!settled) {
    const [row] = await query<{ running: number }>(
      'postgres',
      `SELECT count(*)::int AS running FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'CREATE DATABASE % TEMPLATE "${template}"%'`,
    );
    most = Math.max(most, row!.running);
  }
  return most;
}

describe('one project, many concurrent seed() calls', () => {
  it('16 seeds with max_concurrent_clones = 2: all succeed, never more than 2 CREATE DATABASE at once', async () => {
    const templateName = `p_${randomBytes(4).toString('hex')}`;
    const root = await tempRepo({
      'dbfast.toml': `[database]\ntemplate_name = "${templateName}"\n[performance]\nmax_concurrent_clones = 2\nclone_timeout_ms = 120000\n`,
      // Big enough that a copy takes a while, so that overlapping copies are seen when they happen.
      'db/0_schema/01.sql': "CREATE TABLE filler AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 200000) g;",
    });
    const project = await Project.open({ cwd: root, env: { DBFAST_DATABASE_URL: serverUrl() } });
    await project.build();
    try {
      const seeds = Promise.all(Array.from({ length: 16 }, () => project.seed()));
      const most = await mostConcurrentClones(templateName, seeds);
      const results = await seeds;
      expect(new Set(results.map((result) => result.database)).size).toBe(16);
      expect(results.every((result) => !result.rebuilt)).toBe(true);
      expect(most).toBe(2);
      const [row] = await query<{ n: number }>(results[15]!.database, 'SELECT count(*)::int AS n FROM filler');
      expect(row!.n).toBe(200000);
    } finally {
      await project.clean({ all: true });
    }
  });
});
