import { describe, expect, it } from 'vitest';
import { cliProjects, withoutProgress } from '../helpers/cli.js';

const tracked = cliProjects();

describe('dbfast build', () => {
  it('counts files, statements and rows in the right number, one or several', async () => {
    const one = await tracked({ 'db/0_schema/01.sql': 'CREATE TABLE t (id int);\nCOPY t FROM stdin;\n1\n\\.\n' });
    const built = await one.run(['build']);
    expect(built.code, built.stderr).toBe(0);
    expect(built.stdout).toBe('');
    expect(withoutProgress(built)).toEqual([expect.stringMatching(new RegExp(`^built ${one.templateName}: 1 file, 2 statements, 1 row copied in [\\d.]+s$`))]);
    const again = await one.run(['build']);
    expect(withoutProgress(again)).toEqual([expect.stringMatching(new RegExp(`^${one.templateName} is up to date \\(built \\S+, 1 file\\)$`))]);

    const several = await tracked({ 'db/0_schema/01.sql': 'SELECT 1;', 'db/0_schema/02.sql': 'SELECT 2;' });
    const result = await several.run(['build']);
    expect(withoutProgress(result)).toEqual([expect.stringMatching(/: 2 files, 2 statements, 0 rows copied in /)]);
  });
});
