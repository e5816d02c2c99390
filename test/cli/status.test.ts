import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliProjects, lines } from '../helpers/cli.js';

const tracked = cliProjects();

describe('dbfast status', () => {
  it('writes its report to stdout, so it can be piped (dbfast status | grep template); stderr stays empty', async () => {
    const project = await tracked({ 'db/0_schema/01.sql': 'CREATE TABLE t (id int);' });
    expect((await project.run(['seed'])).code).toBe(0);

    const result = await project.run(['status']);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    const report = lines(result.stdout);
    expect(report.map((line) => line.split(' ')[0])).toEqual(['server', 'repository', 'template', 'clones', 'disk', 'copies']);
    expect(report[1]).toBe(`repository  ${join(project.root, 'db')}, 1 file, unchanged`);
    expect(report[2]).toMatch(new RegExp(`^template    ${project.templateName}, built \\S+ in [\\d.]+s, 1 file, [\\d.]+ \\w?B, fingerprint [0-9a-f]{12}$`));
    expect(report[3]).toMatch(/^clones {6}1, [\d.]+ \w?B$/);
    // The detached pool refill may or may not have made spares yet.
    expect(report[4]).toMatch(/^disk {8}[\d.]+ \w?B: 1 template [\d.]+ \w?B, (\d pool spares? [\d.]+ \w?B, )?1 clone [\d.]+ \w?B$/);
    // PostgreSQL 15 on ext4: FILE_COPY, and why.
    expect(report[5]).toMatch(/^copies {6}STRATEGY FILE_COPY \(FILE_COPY: faster than WAL_LOG .*\)$/);

    await writeFile(join(project.root, 'db/0_schema/01.sql'), 'CREATE TABLE t (id bigint);');
    const verbose = await project.run(['status', '--verbose']);
    expect(verbose.stderr).toBe('');
    // Named from the dbfast.toml folder, as in every other message.
    expect(lines(verbose.stdout)).toContain('              modified: db/0_schema/01.sql');
  });

  it('says the template and clones are unknown, not missing, when the server cannot be asked (exit 1)', async () => {
    const project = await tracked({ 'db/0_schema/01.sql': 'SELECT 1;' });
    const result = await project.run(['status'], { env: { DBFAST_DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/postgres' } });
    expect(result.code).toBe(1);
    expect(lines(result.stdout)).toEqual([
      'server      configured, cannot reach PostgreSQL at postgres@127.0.0.1:1 (ECONNREFUSED)',
      `repository  ${join(project.root, 'db')}, 1 file, no template to compare`,
      'template    unknown: the server could not be asked',
      'clones      unknown',
    ]);
  });
});
