import { describe, expect, inject, it } from 'vitest';
import { DbfastError, type DeployPlan, deploy, loadConfig, openProject } from '../src/index.js';
import { dropTemplateAndClones } from './helpers/cli.js';
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

  it('plans a deploy through loadConfig and deploy, changing nothing', async () => {
    const port = inject('serverPort');
    const root = await tempRepo({
      'dbfast.toml': `[database]\nurl = "postgresql://postgres@127.0.0.1:${port}/postgres"\ntemplate_name = "api_deploy"\n[environments.app]\n[remotes.target]\nurl = "postgresql://postgres@127.0.0.1:${port}/api_deploy_target"\nenvironment = "app"\n`,
      'db/0_schema/a.sql': 'CREATE TABLE a (id int);',
    });
    const config = await loadConfig({ cwd: root, env: {} });
    const plan = (await deploy(config, 'target', { dryRun: true, env: {} })) as DeployPlan;
    try {
      expect(plan).toMatchObject({ remote: 'target', environment: 'app', mode: 'replace', files: ['0_schema/a.sql'], destructive: false, backup: false });
      expect(await query('postgres', "SELECT datname FROM pg_database WHERE datname = 'api_deploy_target'")).toEqual([]);
    } finally {
      await dropTemplateAndClones(plan.template);
    }
  });
});
