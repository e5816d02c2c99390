import { describe, expect, it } from 'vitest';
import { cliProjects } from '../helpers/cli.js';
import { query } from '../helpers/database.js';

const tracked = cliProjects();

describe('dbfast clean --gc', () => {
  it('prints each database it drops and a summary; --dry-run drops nothing; --json prints the result', async () => {
    const project = await tracked({ 'db/0_schema/01.sql': 'CREATE TABLE t (id int);' }, '[performance]\npool_size = 0\n');
    expect((await project.run(['build'])).code).toBe(0);
    const orphan = `${project.templateName}__b12345678`;
    await query('postgres', `CREATE DATABASE "${orphan}"`);

    const dry = await project.run(['clean', '--gc', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.errLines).toEqual([
      expect.stringMatching(new RegExp(`^would drop ${orphan} \\(orphan, [\\d.]+ \\w?B, crashed run\\)$`)),
      expect.stringMatching(/^would drop 1 database, [\d.]+ \w?B; dbfast's databases would use [\d.]+ \w?B$/),
    ]);
    expect(await query('postgres', `SELECT 1 FROM pg_database WHERE datname = '${orphan}'`)).toHaveLength(1);

    const json = await project.run(['clean', '--gc', '--json']);
    expect(json.code).toBe(0);
    const result = JSON.parse(json.stdout);
    expect(result).toMatchObject({ dryRun: false, dropped: [{ name: orphan, kind: 'orphan', template: project.templateName, reason: 'crashed run' }], overBudget: false, maxDiskBytes: null, busy: [] });
    expect(result.usedBytes).toBeGreaterThan(0);

    const again = await project.run(['clean', '--gc']);
    expect(again.errLines).toEqual([expect.stringMatching(/^nothing to collect; dbfast's databases use [\d.]+ \w?B$/)]);
  });

  it('warns, and exits 0, when what is left is over max_disk', async () => {
    const project = await tracked({ 'db/0_schema/01.sql': 'CREATE TABLE t (id int);' }, '[performance]\npool_size = 0\nmax_disk = "1kB"\n');
    expect((await project.run(['seed'])).code).toBe(0);
    const result = await project.run(['clean', '--gc']);
    expect(result.code).toBe(0);
    expect(result.errLines.at(-1)).toMatch(/^warning: dbfast's databases use [\d.]+ MB, more than max_disk \(1\.0 kB\): what is left are templates and clones that have not expired$/);
  });

  it('refuses --gc with --all, --older-than or --keep-last, and --dry-run without --gc (exit 2), before reaching the server', async () => {
    const project = await tracked({ 'db/0_schema/01.sql': 'SELECT 1;' });
    const offline = { env: { DBFAST_DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/postgres' } };
    for (const rule of [['--all'], ['--older-than', '1h'], ['--keep-last', '2']]) {
      const result = await project.run(['clean', '--gc', ...rule], offline);
      expect(result.code).toBe(2);
      expect(result.errLines[0]).toBe('error: --gc does not go with --all, --older-than or --keep-last');
    }
    const dry = await project.run(['clean', '--all', '--dry-run'], offline);
    expect(dry.code).toBe(2);
    expect(dry.errLines[0]).toBe('error: --dry-run and --json go with --gc');
  });
});
