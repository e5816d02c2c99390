import { describe, expect, inject, it } from 'vitest';
import { DbfastError, openProject } from '../src/index.js';
import { query } from './helpers/database.js';
import { tempRepo } from './helpers/repo.js';

describe('public API', () => {
  it('connects with the libpq variables of the env it is given, not those of the process', async () => {
    const root = await tempRepo({ 'db/a.sql': 'CREATE TABLE a (id int);' });
    const dbfast = await openProject({
      cwd: root,
      env: { DBFAST_DATABASE_URL: 'postgresql://postgres@127.0.0.1/postgres', PGPORT: String(inject('serverPort')) },
    });
    expect((await dbfast.status()).server).toMatchObject({ reachable: true, address: `postgres@127.0.0.1:${inject('serverPort')}` });
  });

  it('opens a project by config path and seeds, lists and drops through it', async () => {
    const root = await tempRepo({
      'conf/dbfast.toml': '[database]\ntemplate_name = "api_example"\n[repository]\npath = "../sql"\n',
      'sql/0_schema/a.sql': 'CREATE TABLE a (id int);\nINSERT INTO a VALUES (1);',
    });
    const env = { DBFAST_DATABASE_URL: `postgresql://postgres@127.0.0.1:${inject('serverPort')}/postgres` };
    const dbfast = await openProject({ config: `${root}/conf/dbfast.toml`, env });
    const seeded = await dbfast.seed();
    expect(seeded).toMatchObject({ template: 'api_example', rebuilt: true, url: expect.stringContaining(seeded.database) });
    expect(await query(seeded.database, 'SELECT id FROM a')).toEqual([{ id: 1 }]);
    expect((await dbfast.list()).some((clone) => clone.name === seeded.database)).toBe(true);
    await dbfast.drop(seeded.database);
    await expect(dbfast.drop(seeded.database)).rejects.toBeInstanceOf(DbfastError);
    await dbfast.clean({ all: true });
  });
});
