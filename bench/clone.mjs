
import { mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Project } from '../dist/core/project.js';
import { cleanEnv, GIGABYTE_TABLE_SQL, timeProcess, withClient } from './shared.mjs';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const CORPUS = fileURLToPath(new URL('../../shared/corpus/', import.meta.url));
const CLI = join(REPO, 'dist/cli/main.js');
// The C programs: Debian's /usr/bin/createdb is a Perl wrapper that costs 30-40 ms more per process.
const BIN = process.env.DBFAST_BENCH_PG_BIN ?? '/usr/lib/postgresql/15/bin';
// Even counts: each tool goes first equally often.
const CLONE_RUNS = 10;
const LATENCY_RUNS = 24;
const GOAL_CLONE = 1.3;
const GOAL_BUILD = 1.3;

export async function benchClone(server) {
  const url = `postgresql://${server.user}@${server.host}:${server.port}/postgres`;
  const work = await mkdtemp(join(tmpdir(), 'dbfast-bench-clone-'));
  const rows = [];
  try {
    const templates = [
      { label: 'blog', files: { db: join(REPO, 'examples/blog/db') } },
      { label: 'pagila + 1 GB', files: { 'db/0_schema': join(CORPUS, 'pagila/0_schema'), 'db/1_seed': join(CORPUS, 'pagila/1_seed') }, bulk: true },
    ];
    for (const template of templates) {
      const dir = await projectFolder(work, template);
      const project = await Project.open({ cwd: dir, env: { DBFAST_DATABASE_URL: url } });
      rows.push(await benchBuild(project, server, template.label));
      rows.push(await benchCli(project, server, dir, url, template.label));
      rows.push(...(await benchLibrary(project, server, template.label)));
      await project.clean({ all: true });
    }
    for (const count of [1_000, 10_000]) rows.push(await benchFreshness(work, url, count));
    rows.push(await benchFreshness(work, url, 1_000, { withIncludes: true }));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return rows;
}

async function projectFolder(work, template) {
  const dir = join(work, template.label.replace(/\W+/g, '_'));
  await mkdir(join(dir, 'db'), { recursive: true });
  const name = `bench_${template.label.toLowerCase().replace(/\W+/g, '_')}`;
  // No pool: these rows measure a copy (bench/pool.mjs measures the pool).
  await writeFile(join(dir, 'dbfast.toml'), `[database]\ntemplate_name = "${name}"\n[performance]\npool_size = 0\n`);
  for (const [path, target] of Object.entries(template.files)) {
    if (path === 'db') await rm(join(dir, 'db'), { recursive: true });
    await symlink(target, join(dir, path));
  }
  if (template.bulk) {
    await mkdir(join(dir, 'db/2_bulk'));
    await writeFile(join(dir, 'db/2_bulk/01_rows.sql'), GIGABYTE_TABLE_SQL);
  }
  return dir;
}

async function benchBuild(project, server, label) {
  const { files } = await project.scan();
  const started = performance.now();
  const built = await project.build({ force: true });
  const dbfastMs = performance.now() - started;
  // The floor is what a person would run: createdb, then psql -f with every file in one session.
  const floorMs = await withClient(server, 'postgres', async (admin) => {
    const connection = ['-h', server.host, '-p', String(server.port), '-U', server.user];
    try {
      const created = await timeProcess(join(BIN, 'createdb'), [...connection, 'bench_floor_build']);
      const args = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', ...connection, '-d', 'bench_floor_build'];
      return created + (await timeProcess(join(BIN, 'psql'), [...args, ...files.flatMap((file) => ['-f', file.absolutePath])]));
    } finally {
      await admin.query('DROP DATABASE IF EXISTS bench_floor_build');
    }
  });
  const size = `${Math.round(built.template.sizeBytes / 2 ** 20)} MB`;
  return row(`build ${label} (${size}) vs psql -f`, dbfastMs, floorMs, GOAL_BUILD);
}

/** Whole processes, alternating which goes first, median of CLONE_RUNS. */
async function benchCli(project, server, dir, url, label) {
  const times = { dbfast: [], floor: [] };
  await withClient(server, 'postgres', async (admin) => {
    for (let run = 0; run < CLONE_RUNS; run++) {
      const name = `bench_createdb_${run}`;
      const tools = [
        ['dbfast', () => timeProcess(process.execPath, [CLI, 'seed', '-o', `bench_seed_${run}`], { cwd: dir, env: { ...cleanEnv(), DBFAST_DATABASE_URL: url } })],
        ['floor', () => timeProcess(join(BIN, 'createdb'), ['-h', server.host, '-p', String(server.port), '-U', server.user, '-S', 'file_copy', '-T', project.templateName, name])],
      ];
      if (run % 2) tools.reverse();
      for (const [tool, measure] of tools) {
        // Each clone starts from the same state: no checkpoint debt left by the previous drop.
        await admin.query('CHECKPOINT');
        times[tool].push(await measure());
      }
      await admin.query(`DROP DATABASE ${name}`);
      await project.drop(`bench_seed_${run}`);
    }
  });
  return row(`seed CLI ${label} vs createdb -T`, median(times.dbfast), median(times.floor), GOAL_CLONE);
}

async function benchLibrary(project, server, label) {
  const times = { dbfast: [], floor: [] };
  await project.seed(); // warm: server version, connection
  await withClient(server, 'postgres', async (admin) => {
    const tools = [
      ['dbfast', async () => (await project.seed()).database],
      [
        'floor',
        async () => {
          await admin.query(`CREATE DATABASE bench_raw TEMPLATE ${project.templateName} STRATEGY FILE_COPY`);
          return 'bench_raw';
        },
      ],
    ];
    for (let run = 0; run < LATENCY_RUNS; run++) {
      for (const [tool, clone] of run % 2 ? [...tools].reverse() : tools) {
        await admin.query('CHECKPOINT');
        const started = performance.now();
        const database = await clone();
        times[tool].push(performance.now() - started);
        if (tool === 'dbfast') await project.drop(database);
        else await admin.query(`DROP DATABASE ${database}`);
      }
    }
  });
  return [
    row(`seed() p50 ${label} vs CREATE DATABASE`, percentile(times.dbfast, 0.5), percentile(times.floor, 0.5), GOAL_CLONE),
    row(`seed() p95 ${label} vs CREATE DATABASE`, percentile(times.dbfast, 0.95), percentile(times.floor, 0.95), GOAL_CLONE),
  ];
}

/**
 * `check()`: what every seed pays before cloning when nothing changed. Goal: the warm-scan goal (60 ms per
 * 10,000 files), an included file counting as one more file.
 */
export async function benchFreshness(work, url, count, { withIncludes = false } = {}) {
  const label = withIncludes ? `${count}_with_includes` : `${count}`;
  const dir = join(work, `fresh_${label}`);
  const anHourAgo = new Date(Date.now() - 3_600_000);
  const writeOld = async (path, content) => {
    await writeFile(path, content);
    // Old files, as in a real repository: recent ones are re-hashed on purpose (racy-clean rule).
    await utimes(path, anHourAgo, anHourAgo);
  };
  for (let folder = 0; folder < 20; folder++) {
    await mkdir(join(dir, 'db', `${folder}_part`), { recursive: true });
    if (withIncludes) await mkdir(join(dir, 'inc', `${folder}_part`), { recursive: true });
    for (let file = 0; file < count / 20; file++) {
      const name = `${folder}_part/${String(file).padStart(4, '0')}`;
      const include = withIncludes ? `\\i ../../inc/${name}.inc\n` : '';
      await writeOld(join(dir, 'db', `${name}.sql`), `SELECT ${file}; -- ${'x'.repeat(200)}\n${include}`);
      if (withIncludes) await writeOld(join(dir, 'inc', `${name}.inc`), `SELECT ${file}; -- ${'y'.repeat(200)}\n`);
    }
  }
  await writeFile(join(dir, 'dbfast.toml'), `[database]\ntemplate_name = "bench_fresh_${label}"\n`);
  const project = await Project.open({ cwd: dir, env: { DBFAST_DATABASE_URL: url } });
  await project.build(); // a template to compare with; also warms the stat cache
  const times = [];
  for (let run = 0; run < 9; run++) {
    const started = performance.now();
    const { fresh, state } = await project.check();
    times.push(performance.now() - started);
    if (!fresh || state.files.length !== count) throw new Error(`freshness check: fresh ${fresh}, ${state.files.length} files`);
  }
  const files = withIncludes ? `${count.toLocaleString('en')} files + ${count.toLocaleString('en')} included` : `${count.toLocaleString('en')} files`;
  const goalMs = (60 * count * (withIncludes ? 2 : 1)) / 10_000;
  return { name: `freshness check, ${files}`, dbfastMs: round(median(times)), goalMs };
}

function row(name, dbfastMs, floorMs, goal) {
  return { name, dbfastMs: round(dbfastMs), floorMs: round(floorMs), ratio: Math.round((dbfastMs / floorMs) * 100) / 100, goal };
}

function median(values) {
  return percentile(values, 0.5);
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

function round(value) {
  return Math.round(value * 10) / 10;
}
