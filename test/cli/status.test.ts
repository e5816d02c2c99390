import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type CliProject, cliProject, lines } from '../helpers/cli.js';

const projects: CliProject[] = [];
afterAll(async () => {
  for (const made of projects) await made.remove();
});

describe('dbfast status', () => {
  it('writes its report to stdout, so it can be piped (dbfast status | grep template); stderr stays empty', async () => {
    const project = await cliProject({ 'db/0_schema/01.sql': 'CREATE TABLE t (id int);' });
    projects.push(project);
    expect((await project.run(['seed'])).code).toBe(0);

    const result = await project.run(['status']);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    const report = lines(result.stdout);
    expect(report.map((line) => line.split(' ')[0])).toEqual(['server', 'repository', 'template', 'clones']);
    expect(report[1]).toBe(`repository  ${join(project.root, 'db')}, 1 file, unchanged`);
    expect(report[2]).toMatch(new RegExp(`^template    ${project.templateName}, built \\S+ in [\\d.]+s, 1 file, [\\d.]+ \\w?B, fingerprint [0-9a-f]{12}$`));
    expect(report[3]).toMatch(/^clones {6}1, [\d.]+ \w?B$/);

    await writeFile(join(project.root, 'db/0_schema/01.sql'), 'CREATE TABLE t (id bigint);');
    const verbose = await project.run(['status', '--verbose']);
    expect(verbose.stderr).toBe('');
    expect(lines(verbose.stdout)).toContain('              modified: 0_schema/01.sql');
  });
});
