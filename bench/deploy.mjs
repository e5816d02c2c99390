/**
 * Deploys onto a database of the benchmark server standing in for a remote: a migrate deploy (new
 * files in one transaction, [validation] and the schema check before COMMIT) against `psql -1 -f`
 * of the same files, small and large; a replace deploy of a new database against the raw path
 * (createdb -T of the template, pg_dump -Fc, createdb, pg_restore). Every run starts from the same
 * state (a fresh copy of the remote, made untimed). No backup first: `backup` measures those.
 */
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../dist/core/config/index.js';
import { deploy } from '../dist/core/deploy.js';
import { Project } from '../dist/core/project.js';
import { alternate, cleanEnv, comparisonRow, dropDatabase, dropDatabasesStartingWith, timeProcess, withClient } from './shared.mjs';

const CORPUS = fileURLToPath(new URL('../../shared/corpus/', import.meta.url));
const BIN = process.env.DBFAST_BENCH_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const PREFIX = 'bench_deploy_';
const REMOTE = `${PREFIX}remote`;
const BASE = `${PREFIX}base`;
const BULK_ROWS = 1_000_000;
const RUNS = 5;
const GOALS = { migrateSmall: 10, migrateLarge: 1.2, replace: 2 };

/** A small migration (DDL on Pagila) and a large one (an index and an update over a million rows). */
const MIGRATIONS = {
  small: "ALTER TABLE public.rental ADD COLUMN note text;\nCREATE INDEX rental_note ON public.rental (note);\nCREATE TABLE public.audit (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());\n",
  large: 'CREATE INDEX bulk_payload ON public.bulk (payload);\nUPDATE public.bulk SET at = at + interval \'1 day\' WHERE id % 4 = 0;\n',
};

export async function benchDeploy(server) {
  const env = cleanEnv();
  const work = await mkdtemp(join(tmpdir(), 'dbfast-bench-deploy-'));
  const url = (database) => `postgresql://${server.user}@${server.host}:${server.port}/${database}`;
  const connection = ['-h', server.host, '-p', String(server.port), '-U', server.user];
  await cp(join(CORPUS, 'pagila'), join(work, 'db'), { recursive: true, filter: (source) => !/README|LICENSE/.test(source) });
  await writeFile(
    join(work, 'db/1_seed/zz_bulk.sql'),
    `CREATE TABLE public.bulk AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS payload, now() AS at FROM generate_series(1, ${BULK_ROWS}) AS g;\nALTER TABLE public.bulk ADD PRIMARY KEY (id);\n`,
  );
  const toml = (extra) =>
    [
      '[database]',
      `url = "${url('postgres')}"`,
      `template_name = "${PREFIX}template"`,
      '[environments.app]',
      '[remotes.live]',
      `url = "${url(REMOTE)}"`,
      'environment = "app"',
      'backup_before_deploy = false',
      '[remotes.fresh]',
      `url = "${url(`${PREFIX}fresh`)}"`,
      'environment = "app"',
      'allow_destructive = true',
      'backup_before_deploy = false',
      '[backups]',
      `directory = "${join(work, 'backups')}"`,
      '[tools]',
      `pg_bin_dir = "${BIN}"`,
      extra,
      '',
    ].join('\n');
  await writeFile(join(work, 'dbfast.toml'), toml(''));
  const rows = [];
  try {
    await withClient(server, 'postgres', async (admin) => {
      await dropLeftovers(admin);
      let config = await loadConfig({ cwd: work, env });
      // The remote as it is before each migrate: the environment deployed (replace, untimed), kept as BASE.
      await deploy(config, 'live', { mode: 'replace', yes: true, env });
      await admin.query(`ALTER DATABASE ${REMOTE} RENAME TO ${BASE}`);
      const bench = { admin, env, work, connection, server };
      for (const size of ['small', 'large']) {
        await writeFile(join(work, `db/2_migration_${size}.sql`), MIGRATIONS[size]);
        config = await loadConfig({ cwd: work, env });
        await new Project(config, 'app', env).build();
        rows.push(await benchMigrate(bench, config, size));
        await rm(join(work, `db/2_migration_${size}.sql`));
      }
      rows.push(await benchReplace(bench, await loadConfig({ cwd: work, env })));
    });
  } finally {
    await withClient(server, 'postgres', dropLeftovers).catch((error) => console.error(`deploy bench: could not drop its databases: ${error.message}`));
    await rm(work, { recursive: true, force: true });
  }
  return rows;
}

async function benchMigrate({ admin, env, work, connection }, config, size) {
  const fresh = async () => {
    await dropDatabase(admin, REMOTE);
    await admin.query(`CREATE DATABASE ${REMOTE} TEMPLATE ${BASE}`);
    await admin.query('CHECKPOINT');
  };
  const tools = {
    dbfast: async () => {
      const started = performance.now();
      const result = await deploy(config, 'live', { mode: 'migrate', yes: true, env });
      const elapsed = performance.now() - started;
      if (result.files.length !== 1) throw new Error(`migrate deploy applied ${result.files.join(', ')}`);
      return elapsed;
    },
    floor: () => timeProcess(join(BIN, 'psql'), ['-X', '-q', '-1', '-v', 'ON_ERROR_STOP=1', ...connection, '-d', REMOTE, '-f', join(work, `db/2_migration_${size}.sql`)], { env }),
  };
  const times = await alternate(tools, RUNS, { warmUp: true, before: fresh });
  const label = size === 'small' ? 'migrate deploy, 3 DDL statements on Pagila' : `migrate deploy, an index and an UPDATE over ${BULK_ROWS / 1e6}M rows`;
  return comparisonRow(`${label} vs psql -1 -f`, times, size === 'small' ? GOALS.migrateSmall : GOALS.migrateLarge);
}

async function benchReplace({ admin, env, work, connection }, config) {
  const { template: built } = await new Project(config, 'app', env).build();
  const template = built.name;
  const target = `${PREFIX}fresh`;
  const dump = join(work, 'floor.dump');
  const tools = {
    dbfast: async () => {
      const started = performance.now();
      const result = await deploy(config, 'fresh', { mode: 'replace', yes: true, env });
      const elapsed = performance.now() - started;
      if (result.method !== 'created') throw new Error(`replace deploy: ${result.method}`);
      return elapsed;
    },
    floor: async () => {
      const clone = `${PREFIX}floor_clone`;
      const started = performance.now();
      await timeProcess(join(BIN, 'createdb'), [...connection, '-T', template, clone], { env });
      await timeProcess(join(BIN, 'pg_dump'), ['-Fc', ...connection, '-f', dump, clone], { env });
      await timeProcess(join(BIN, 'createdb'), [...connection, target], { env });
      await timeProcess(join(BIN, 'pg_restore'), [...connection, '-d', target, dump], { env });
      await timeProcess(join(BIN, 'dropdb'), [...connection, clone], { env });
      return performance.now() - started;
    },
  };
  const before = async () => {
    await dropDatabase(admin, target);
    await admin.query('CHECKPOINT');
  };
  const times = await alternate(tools, RUNS, { warmUp: true, before });
  return comparisonRow('replace deploy of a new database (Pagila + 1M rows) vs createdb -T, pg_dump -Fc, createdb, pg_restore', times, GOALS.replace);
}

/** The template, the remote's copies and the floor's databases all start with PREFIX. */
function dropLeftovers(admin) {
  return dropDatabasesStartingWith(admin, PREFIX);
}
