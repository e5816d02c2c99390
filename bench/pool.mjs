/**
 * Speed beyond the template: seeds from the warm pool (library and CLI) against the raw floors
 * (CREATE DATABASE ... TEMPLATE on an open connection, the C createdb -T), a CLI seed without the pool,
 * an incremental rebuild after a late-layer edit against a full one, and 100 seeds from 8 workers.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withClient as withProjectClient } from '../dist/core/pg/client.js';
import { readPool } from '../dist/core/pool.js';
import { Project } from '../dist/core/project.js';
import { alternate, cleanEnv, comparisonRow, dropDatabase, dropDatabasesStartingWith, GIGABYTE_TABLE_SQL, median, round, timeProcess, withClient } from './shared.mjs';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const CORPUS = fileURLToPath(new URL('../../shared/corpus/', import.meta.url));
const CLI = join(REPO, 'dist/cli/main.js');
// The C program: Debian's /usr/bin/createdb is a Perl wrapper that costs 30-40 ms more per process.
const BIN = process.env.DBFAST_BENCH_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const LATENCY_RUNS = 24;
const CLI_RUNS = 10;
const POOL_SIZE = 4;

export async function benchPool(server) {
  const url = `postgresql://${server.user}@${server.host}:${server.port}/postgres`;
  const work = await mkdtemp(join(tmpdir(), 'dbfast-bench-pool-'));
  const rows = [];
  try {
    for (const template of [{ label: 'pagila' }, { label: 'pagila + 1 GB', bulk: true }]) {
      const pooled = await pagilaProject(work, url, template, POOL_SIZE);
      await pooled.project.build();
      await pooled.project.fillPool();
      rows.push(...(await benchLibrary(pooled.project, server, template.label)));
      rows.push(await benchCli(pooled, server, url, template.label, { pooled: true }));
      await pooled.project.clean({ all: true });
      // The same files in another folder, without a pool: the template is fresh, seed copies it.
      const plain = await pagilaProject(work, url, template, 0);
      rows.push(await benchCli(plain, server, url, template.label, { pooled: false }));
      await withClient(server, 'postgres', (admin) => dropDatabasesStartingWith(admin, pooled.project.templateName));
      await pooled.project.close();
    }
    rows.push(await benchIncremental(work, server, url));
    rows.push(await benchThroughput(work, server, url));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return rows;
}

async function pagilaProject(work, url, template, poolSize) {
  const name = `bench_pool_${template.bulk ? 'bulk' : 'pagila'}`;
  const dir = join(work, `${name}_${poolSize}`);
  await mkdir(join(dir, 'db'), { recursive: true });
  await writeFile(join(dir, 'dbfast.toml'), `[database]\ntemplate_name = "${name}"\n[performance]\npool_size = ${poolSize}\n`);
  await symlink(join(CORPUS, 'pagila/0_schema'), join(dir, 'db/0_schema'));
  await symlink(join(CORPUS, 'pagila/1_seed'), join(dir, 'db/1_seed'));
  if (template.bulk) {
    await mkdir(join(dir, 'db/2_bulk'));
    await writeFile(join(dir, 'db/2_bulk/01_rows.sql'), GIGABYTE_TABLE_SQL);
  }
  return { dir, project: await Project.open({ cwd: dir, env: { DBFAST_DATABASE_URL: url } }) };
}

/** seed() on a warm pool (refilled untimed before each run) against CREATE DATABASE ... TEMPLATE on an open connection. */
async function benchLibrary(project, server, label) {
  const made = [];
  const times = await withClient(server, 'postgres', (admin) =>
    alternate(
      {
        dbfast: async () => {
          const started = performance.now();
          const result = await project.seed({ refill: false });
          const elapsed = performance.now() - started;
          if (!result.pooled) throw new Error('the pool was empty: the benchmark would measure a copy');
          made.push(result.database);
          return elapsed;
        },
        floor: async () => {
          const started = performance.now();
          await admin.query(`CREATE DATABASE bench_pool_raw TEMPLATE ${project.templateName} STRATEGY FILE_COPY`);
          const elapsed = performance.now() - started;
          await dropDatabase(admin, 'bench_pool_raw');
          return elapsed;
        },
      },
      LATENCY_RUNS,
      {
        warmUp: true,
        before: async () => {
          await project.fillPool();
          await admin.query('CHECKPOINT');
        },
      },
    ),
  );
  await project.drop(...made);
  const p95 = (values) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(0.95 * values.length))];
  return [
    comparisonRow(`seed() warm pool p50, ${label}, vs CREATE DATABASE`, times, 0.1),
    { name: `seed() warm pool p50, ${label} (goal <= 2 ms)`, dbfastMs: round(median(times.dbfast)), goalMs: 2 },
    comparisonRow(`seed() warm pool p95, ${label}, vs CREATE DATABASE`, { dbfast: [p95(times.dbfast)], floor: [p95(times.floor)] }, 0.1),
  ];
}

/** Whole processes: dbfast seed (a spare, or a copy without the pool) against the C createdb -T, alternating. */
async function benchCli({ dir, project }, server, url, label, { pooled }) {
  const env = { ...cleanEnv(), DBFAST_DATABASE_URL: url };
  let run = 0;
  const times = await withClient(server, 'postgres', (admin) =>
    alternate(
      {
        dbfast: () => timeProcess(process.execPath, [CLI, 'seed', '-o', `bench_pool_seed_${run}`], { cwd: dir, env }),
        floor: () =>
          timeProcess(join(BIN, 'createdb'), ['-h', server.host, '-p', String(server.port), '-U', server.user, '-S', 'file_copy', '-T', project.templateName, `bench_pool_createdb_${run}`], { env }),
      },
      CLI_RUNS,
      {
        warmUp: true,
        onRun: (number) => (run = number),
        before: async () => {
          // A warm pool for every run: the detached refill of the previous seed has finished (or this fills it).
          if (pooled) {
            await project.fillPool();
            await untilPoolFull(project);
          }
          await admin.query('CHECKPOINT');
        },
      },
    ),
  );
  await withClient(server, 'postgres', async (admin) => {
    await dropDatabasesStartingWith(admin, 'bench_pool_seed_');
    await dropDatabasesStartingWith(admin, 'bench_pool_createdb_');
  });
  const what = pooled ? 'warm pool' : 'no pool (a copy)';
  return comparisonRow(`seed CLI ${what}, ${label}, vs C createdb -T`, times, pooled ? 1.0 : 1.3);
}

async function untilPoolFull(project) {
  const target = await project.server();
  for (let tries = 0; ; tries++) {
    const { spares } = await withProjectClient(target, (admin) => readPool(admin, project.templateName));
    if (spares.length >= POOL_SIZE) break;
    if (tries > 600) throw new Error('the detached refill did not fill the pool');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // Let the refill process exit: its last moments are CPU this machine's two cores share with the next run.
  await new Promise((resolve) => setTimeout(resolve, 300));
}

/** A schema layer that dominates (1,500 tables with indexes, checks and functions), a small seed layer edited between builds. */
async function benchIncremental(work, server, url) {
  const dir = join(work, 'layers');
  await mkdir(join(dir, 'db/0_schema'), { recursive: true });
  await mkdir(join(dir, 'db/1_seed'), { recursive: true });
  await writeFile(join(dir, 'dbfast.toml'), '[database]\ntemplate_name = "bench_layers"\n[performance]\npool_size = 0\n');
  for (let part = 0; part < 10; part++) {
    const tables = Array.from({ length: 150 }, (_, index) => {
      const t = `t_${part}_${index}`;
      return `CREATE TABLE ${t} (id serial PRIMARY KEY, name text NOT NULL CHECK (name <> ''), at timestamptz DEFAULT now(), n int);
CREATE INDEX ${t}_name ON ${t} (name);
CREATE FUNCTION ${t}_count() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT count(*) FROM ${t} $$;`;
    });
    await writeFile(join(dir, `db/0_schema/${String(part).padStart(2, '0')}_tables.sql`), tables.join('\n'));
  }
  const seed = (version) => `INSERT INTO t_0_0 (name, n) SELECT 'row ' || g, ${version} FROM generate_series(1, 1000) g;`;
  await writeFile(join(dir, 'db/1_seed/01_rows.sql'), seed(0));
  const project = await Project.open({ cwd: dir, env: { DBFAST_DATABASE_URL: url } });
  await project.build();
  let version = 0;
  const times = await alternate(
    {
      dbfast: async () => {
        await writeFile(join(dir, 'db/1_seed/01_rows.sql'), seed(++version));
        const started = performance.now();
        const result = await project.build();
        if (result.reusedLayers.length !== 1) throw new Error('the incremental build reused no checkpoint');
        return performance.now() - started;
      },
      floor: async () => {
        const started = performance.now();
        await project.build({ force: true });
        return performance.now() - started;
      },
    },
    4,
    {},
  );
  await project.clean({ all: true });
  await withClient(server, 'postgres', (admin) => dropDatabasesStartingWith(admin, 'bench_layers'));
  await project.close();
  return comparisonRow('rebuild after a seed-layer edit (1,500-table schema) vs a full rebuild', times, 0.25);
}

/** 100 seeds from 8 workers (each its own Project, as test workers are) against 100 CREATE DATABASE from 8 connections. */
async function benchThroughput(work, server, url) {
  const { dir, project } = await pagilaProject(work, url, { label: 'pagila' }, 2);
  await project.build();
  await project.fillPool();
  const workers = await Promise.all(Array.from({ length: 8 }, () => Project.open({ cwd: dir, env: { DBFAST_DATABASE_URL: url } })));
  const share = (worker) => Math.floor(100 / 8) + (worker < 100 % 8 ? 1 : 0);
  const times = { dbfast: [], floor: [] };
  for (let round = 0; round < 2; round++) {
    const made = [];
    let started = performance.now();
    await Promise.all(
      workers.map(async (worker, index) => {
        for (let seed = 0; seed < share(index); seed++) made.push((await worker.seed()).database);
      }),
    );
    times.dbfast.push(performance.now() - started);
    await Promise.all(workers.map((worker) => worker.close()));
    await project.drop(...made);
    await project.fillPool();
    await withClient(server, 'postgres', (admin) => admin.query('CHECKPOINT'));
    started = performance.now();
    await Promise.all(
      Array.from({ length: 8 }, (_, index) =>
        withClient(server, 'postgres', async (admin) => {
          for (let seed = 0; seed < share(index); seed++) {
            await admin.query(`CREATE DATABASE bench_pool_raw_${index}_${seed} TEMPLATE ${project.templateName} STRATEGY FILE_COPY`);
          }
        }),
      ),
    );
    times.floor.push(performance.now() - started);
    await withClient(server, 'postgres', (admin) => dropDatabasesStartingWith(admin, 'bench_pool_raw_'));
  }
  await project.clean({ all: true });
  await withClient(server, 'postgres', (admin) => dropDatabasesStartingWith(admin, project.templateName));
  await project.close();
  const row = comparisonRow('100 seeds from 8 workers, pagila (pool of 2), vs 100 CREATE DATABASE from 8 connections: total', times, 1.3);
  return { ...row, name: `${row.name} (${round(100_000 / row.dbfastMs)} vs ${round(100_000 / row.floorMs)} per s)` };
}
