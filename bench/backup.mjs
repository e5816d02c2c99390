
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checksum, readArchive } from '../dist/core/backup/archive.js';
import { createBackup, programFor } from '../dist/core/backup/create.js';
import { restoreBackup } from '../dist/core/backup/restore.js';
import { findBackup, removeBackup } from '../dist/core/backup/store.js';
import { loadConfig } from '../dist/core/config/index.js';
import { syncToDisk } from '../dist/core/files.js';
import { alternate, cleanEnv, comparisonRow as row, dropDatabase, dropDatabasesStartingWith, median, round, timeProcess, withClient } from './shared.mjs';

const CORPUS = fileURLToPath(new URL('../../shared/corpus/', import.meta.url));
/** pg_dump and pg_restore must be at least the server's major version (15, the embedded server's). */
const BIN = process.env.DBFAST_BENCH_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const PREFIX = 'bench_backup_';
/** A ~125 MB table (~150 MB with its primary key): 1.2 million rows of ~105 bytes. */
const BULK_ROWS = 1_200_000;
const GOAL_CREATE = 1.05;
const GOAL_RESTORE = 1.1;
const GOAL_JOBS = 1.0;
/** Timed runs per row, by database (large: odd, so the median is one run; dbfast goes first in two of the three). */
const RUNS = { small: 4, large: 3 };
const PIECE_RUNS = 3;

export async function benchBackup(server) {
  const env = cleanEnv();
  const work = await mkdtemp(join(tmpdir(), 'dbfast-bench-backup-'));
  const floors = join(work, 'floor');
  await mkdir(floors);
  await writeFile(
    join(work, 'dbfast.toml'),
    [
      '[database]',
      `url = "postgresql://${server.user}@${server.host}:${server.port}/postgres"`,
      '[backups]',
      `directory = "${join(work, 'backups')}"`,
      '[tools]',
      `pg_bin_dir = "${BIN}"`,
      '',
    ].join('\n'),
  );
  const config = await loadConfig({ cwd: work, env });
  const bench = { server, env, config, floors, connection: ['-h', server.host, '-p', String(server.port), '-U', server.user] };
  const rows = [];
  try {
    await withClient(server, 'postgres', async (admin) => {
      bench.admin = admin;
      await dropLeftovers(admin);
      const databases = await makeDatabases(bench);
      for (const database of databases) rows.push(await benchCreate(bench, database));
      for (const database of databases) rows.push(await benchRestore(bench, database));
      rows.push(await benchSwap(bench, databases[0]));
      rows.push(await benchJobs(bench, databases[1]));
    });
  } finally {
    await withClient(server, 'postgres', dropLeftovers).catch((error) => console.error(`backup bench: could not drop its databases: ${error.message}`));
    await rm(work, { recursive: true, force: true });
  }
  return rows;
}

/** Pagila (psql -f of its schema and data), and a copy of it plus a generated table. */
async function makeDatabases({ server, admin, connection, env }) {
  const pagila = `${PREFIX}pagila`;
  await admin.query(`CREATE DATABASE ${pagila}`);
  const psql = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', ...connection, '-d', pagila];
  for (const file of ['0_schema/pagila-schema.sql', '1_seed/pagila-data.sql']) {
    await timeProcess(join(BIN, 'psql'), [...psql, '-f', join(CORPUS, 'pagila', file)], { env });
  }
  const large = `${PREFIX}large`;
  await admin.query(`CREATE DATABASE ${large} TEMPLATE ${pagila}`);
  await withClient(server, large, async (client) => {
    await client.query(`CREATE TABLE public.bulk AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS payload, now() AS at
                        FROM generate_series(1, ${BULK_ROWS}) AS g`);
    await client.query('ALTER TABLE public.bulk ADD PRIMARY KEY (id)');
    // Hint bits set and statistics taken now, not by the first timed dump.
    await client.query('VACUUM (FREEZE, ANALYZE)');
  });
  const sizes = await admin.query(`SELECT datname, pg_database_size(datname)::float8 AS bytes FROM pg_database WHERE datname IN ($1, $2)`, [pagila, large]);
  const mb = (name) => Math.round(sizes.rows.find((row) => row.datname === name).bytes / 2 ** 20);
  return [
    { name: pagila, label: `pagila (${mb(pagila)} MB)`, runs: RUNS.small, check: 'SELECT count(*) FROM public.rental' },
    { name: large, label: `pagila + bulk (${mb(large)} MB)`, runs: RUNS.large, check: 'SELECT count(*) FROM public.bulk' },
  ];
}

/** createBackup vs pg_dump -Fc; then the pieces of a create, timed alone on the floor's archive. */
async function benchCreate(bench, database) {
  const { admin, config, env, floors, connection } = bench;
  const floorFile = join(floors, `${database.name}.dump`);
  const tools = {
    dbfast: async () => {
      const started = performance.now();
      const backup = await createBackup(config, { database: database.name }, { format: 'custom', env });
      const elapsed = performance.now() - started;
      await removeBackup(backup);
      return elapsed;
    },
    floor: async () => {
      await rm(floorFile, { force: true });
      return timeProcess(join(BIN, 'pg_dump'), ['-Fc', ...connection, '-f', floorFile, database.name], { env });
    },
  };
  const times = await alternate(tools, database.runs, { warmUp: database.runs > RUNS.large, before: checkpoint(admin) });
  const pieces = await createPieces(bench, floorFile, times.floor);
  const size = (await stat(floorFile)).size;
  console.log(
    `backup create ${database.label}, archive ${(size / 2 ** 20).toFixed(1)} MB: pg_dump ${fmt(pieces.pgDump)} ms, fsync ${fmt(pieces.fsync)}, ` +
      `SHA-256 ${fmt(pieces.checksum)}, read-back (pg_restore --file=- + row count) ${fmt(pieces.readBack)}, both as createBackup runs them ${fmt(pieces.together)}`,
  );
  return { ...row(`backup create ${database.label} vs pg_dump -Fc`, times, GOAL_CREATE), piecesMs: pieces };
}

async function createPieces({ config, env }, file, pgDumpTimes) {
  const pgRestore = await programFor('pg_restore', 15, config, env);
  const pieces = { fsync: [], checksum: [], readBack: [], together: [] };
  const time = async (list, work) => {
    const started = performance.now();
    await work();
    list.push(performance.now() - started);
  };
  for (let run = 0; run < PIECE_RUNS; run++) {
    await time(pieces.fsync, () => syncToDisk(file, { recursive: true }));
    await time(pieces.checksum, () => checksum(file, 'custom'));
    await time(pieces.readBack, () => readArchive(pgRestore, file));
    await time(pieces.together, () => Promise.all([checksum(file, 'custom'), readArchive(pgRestore, file)]));
  }
  return {
    pgDump: round(median(pgDumpTimes)),
    ...Object.fromEntries(Object.entries(pieces).map(([name, values]) => [name, round(median(values))])),
  };
}

/** restoreBackup into a new database each run (the `created` path) vs createdb + pg_restore -d of the same archive. */
async function benchRestore(bench, database) {
  const { admin, config, env, connection } = bench;
  const backup = await createBackup(config, { database: database.name }, { format: 'custom', env });
  let run = 0;
  const tools = {
    dbfast: async () => {
      const target = `${PREFIX}restored_${run}`;
      const started = performance.now();
      const result = await restoreBackup(config, backup, { toDatabase: target, env });
      const elapsed = performance.now() - started;
      if (result.method !== 'created') throw new Error(`restore into ${target}: method ${result.method}, expected created`);
      await expectSame(bench, database, target);
      await dropDatabase(admin, target);
      return elapsed;
    },
    floor: async () => {
      const target = `${PREFIX}floor_${run}`;
      const elapsed =
        (await timeProcess(join(BIN, 'createdb'), [...connection, target], { env })) +
        (await timeProcess(join(BIN, 'pg_restore'), [...connection, '--exit-on-error', '-d', target, `${backup.folder}/${backup.archive}`], { env }));
      await expectSame(bench, database, target);
      await dropDatabase(admin, target);
      return elapsed;
    },
  };
  const times = await alternate(tools, database.runs, { warmUp: database.runs > RUNS.large, before: checkpoint(admin), onRun: (index) => (run = index) });
  await removeBackup(backup);
  return row(`backup restore ${database.label}, new database vs createdb + pg_restore`, times, GOAL_RESTORE);
}

/**
 * restoreBackup over an existing database (`yes: true`): the swap path, which backs the replaced database
 * up first. The floor is still createdb + pg_restore of the same archive into a new database.
 */
async function benchSwap(bench, database) {
  const { admin, config, env, connection } = bench;
  const backup = await createBackup(config, { database: database.name }, { format: 'custom', env });
  const target = `${PREFIX}swap`;
  let run = 0;
  const tools = {
    dbfast: async () => {
      // What is replaced: a copy of the same database, so the pre-restore backup is as large as the restore.
      await admin.query(`CREATE DATABASE ${target} TEMPLATE ${database.name}`);
      await admin.query('CHECKPOINT');
      const started = performance.now();
      const result = await restoreBackup(config, backup, { toDatabase: target, yes: true, env });
      const elapsed = performance.now() - started;
      if (result.method !== 'swap' || !result.preRestoreBackup || !result.previous) {
        throw new Error(`restore over ${target}: method ${result.method}, pre-restore backup ${result.preRestoreBackup}, previous ${result.previous}`);
      }
      await expectSame(bench, database, target);
      await removeBackup(await findBackup(config, result.preRestoreBackup));
      await dropDatabase(admin, result.previous);
      await dropDatabase(admin, target);
      return elapsed;
    },
    floor: async () => {
      const floorTarget = `${PREFIX}floor_swap_${run}`;
      const elapsed =
        (await timeProcess(join(BIN, 'createdb'), [...connection, floorTarget], { env })) +
        (await timeProcess(join(BIN, 'pg_restore'), [...connection, '--exit-on-error', '-d', floorTarget, `${backup.folder}/${backup.archive}`], { env }));
      await expectSame(bench, database, floorTarget);
      await dropDatabase(admin, floorTarget);
      return elapsed;
    },
  };
  const times = await alternate(tools, database.runs, { warmUp: true, before: checkpoint(admin), onRun: (index) => (run = index) });
  await removeBackup(backup);
  return row(`backup restore ${database.label} over existing (swap + pre-restore backup) vs createdb + pg_restore`, times, GOAL_RESTORE);
}

/** Directory format, jobs 2 vs jobs 1: the ratio is jobs 2 / jobs 1 (below 1.0: parallel dumping pays). */
async function benchJobs({ admin, config, env }, database) {
  const directory = (jobs) => async () => {
    const started = performance.now();
    const backup = await createBackup(config, { database: database.name }, { format: 'directory', jobs, env });
    const elapsed = performance.now() - started;
    await removeBackup(backup);
    return elapsed;
  };
  const times = await alternate({ dbfast: directory(2), floor: directory(1) }, database.runs, { warmUp: false, before: checkpoint(admin) });
  return row(`backup create ${database.label} directory, jobs 2 vs jobs 1`, times, GOAL_JOBS);
}

/** Timed runs of both tools, alternating which goes first, after an optional untimed warm-up of each. */
/** Each timed run starts with a checkpoint: no run pays for the writes of the one before. */
function checkpoint(admin) {
  return () => admin.query('CHECKPOINT');
}

/** A restore that silently did less (no rows) fails loudly instead of being timed as fast. */
async function expectSame({ server }, database, restored) {
  const count = (name) => withClient(server, name, async (client) => (await client.query({ text: database.check, rowMode: 'array' })).rows[0][0]);
  const [expected, actual] = await Promise.all([count(database.name), count(restored)]);
  if (expected !== actual) throw new Error(`${restored}: ${database.check} gave ${actual}, ${database.name} has ${expected}`);
}

/** Every database this benchmark makes starts with PREFIX: swapped-out (`__dbfast_prev_`) and scratch ones too. */
function dropLeftovers(admin) {
  return dropDatabasesStartingWith(admin, PREFIX);
}

function fmt(ms) {
  return ms.toFixed(0);
}
