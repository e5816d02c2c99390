/**
 * Runs the benchmarks against one embedded server started for this run, prints a table per benchmark and,
 * with --json, writes bench/results.json. Usage: node bench/run.mjs [--json] [benchmark ...]
 *
 * A benchmark returns rows `{ name, dbfastMs, ... }` with either a floor measured in the same run
 * (`floorMs`, `ratio`, `goal`: the highest acceptable ratio) or an absolute goal (`goalMs`).
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { ensureServer, stopServer } from '../dist/core/server.js';
import { benchBackup } from './backup.mjs';
import { benchClone } from './clone.mjs';
import { benchDeploy } from './deploy.mjs';
import { benchEnvironments } from './environments.mjs';
import { benchExecute } from './execute.mjs';
import { benchMemory } from './memory.mjs';
import { benchPool } from './pool.mjs';
import { benchReflink } from './reflink.mjs';
import { benchScan } from './scan.mjs';
import { benchServe } from './serve.mjs';

const BENCHMARKS = [
  { name: 'execute', title: 'Execute SQL files: dbfast vs one psql -f ... session', run: ({ server }) => benchExecute(server) },
  { name: 'scan', title: 'Scan a repository (absolute goals)', run: () => benchScan() },
  { name: 'environments', title: 'Environment file selection (absolute goals)', run: () => benchEnvironments() },
  { name: 'memory', title: 'Peak memory loading large files: dbfast vs psql -f', run: ({ server }) => benchMemory(server) },
  { name: 'clone', title: 'Templates and clones: dbfast vs createdb -T, CREATE DATABASE, psql -f', run: ({ server }) => benchClone(server) },
  {
    name: 'pool',
    title: 'Warm pool, incremental rebuilds, throughput: dbfast vs CREATE DATABASE, C createdb -T, a full rebuild',
    run: ({ server }) => benchPool(server),
  },
  {
    name: 'reflink',
    title: 'Clones on PostgreSQL 18 + XFS with reflink: dbfast seed() vs CREATE DATABASE ... STRATEGY WAL_LOG (its own server)',
    run: () => benchReflink(),
  },
  { name: 'backup', title: 'Backups: dbfast backup create/restore vs pg_dump -Fc, createdb + pg_restore', run: ({ server }) => benchBackup(server) },
  { name: 'deploy', title: 'Deploys: dbfast deploy (migrate, replace) vs psql -1 -f, createdb + pg_dump + pg_restore', run: ({ server }) => benchDeploy(server) },
  {
    name: 'serve',
    title: 'dbfast serve: GET .../tests latency under 8 clients, databases handed out per second vs CREATE DATABASE ... TEMPLATE',
    run: ({ server }) => benchServe(server),
  },
];

const args = process.argv.slice(2);
const writeJson = args.includes('--json');
const wanted = args.filter((arg) => !arg.startsWith('--'));
const unknown = wanted.filter((name) => !BENCHMARKS.some((benchmark) => benchmark.name === name));
if (unknown.length > 0) {
  console.error(`unknown benchmark: ${unknown.join(', ')} (known: ${BENCHMARKS.map((b) => b.name).join(', ')})`);
  process.exit(2);
}
const selected = BENCHMARKS.filter((benchmark) => wanted.length === 0 || wanted.includes(benchmark.name));

await withServer(async (server) => {
  const started = performance.now();
  const machine = await describeMachine(server);
  console.log(`machine: ${machine.summary}\n`);
  const results = {};
  for (const benchmark of selected) {
    const rows = await benchmark.run({ server });
    results[benchmark.name] = rows;
    console.log(`${benchmark.title}\n${formatTable(rows)}\n`);
  }
  console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (writeJson) {
    const path = new URL('./results.json', import.meta.url);
    await writeFile(path, `${JSON.stringify({ date: new Date().toISOString(), machine, results }, null, 2)}\n`);
    console.log(`wrote ${path.pathname}`);
  }
});

/** One server for the whole run, in a temporary state folder that is removed afterwards, also on Ctrl-C. */
async function withServer(use) {
  const stateDir = await mkdtemp(join(tmpdir(), 'dbfast-bench-'));
  // When running as root the server runs as the postgres user, which must be able to enter this folder.
  await chmod(stateDir, 0o755);
  let cleaned;
  const cleanUp = () => {
    cleaned ??= stopServer(stateDir)
      .catch((error) => console.error(`could not stop the benchmark server: ${error.message}`))
      .then(() => rm(stateDir, { recursive: true, force: true }));
    return cleaned;
  };
  // `on`, not `once`: a second SIGINT arrives while pg_ctl stops the server (to the whole process group, it
  // seems) and would kill this process with the default action before the folder is removed.
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => cleanUp().finally(() => process.exit(130)));
  }
  try {
    await use(await ensureServer(stateDir));
  } finally {
    await cleanUp();
  }
}

async function describeMachine(server) {
  const client = new pg.Client({ host: server.host, port: server.port, user: server.user, database: 'postgres' });
  await client.connect();
  const { rows } = await client.query('select version()').finally(() => client.end());
  const machine = {
    cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
    cores: cpus().length,
    ramGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    postgres: rows[0].version.replace(/,? compiled by .*$/, ''),
    psql: execFileSync(process.env.DBFAST_BENCH_PSQL ?? '/usr/bin/psql', ['--version'], { encoding: 'utf8' }).trim(),
  };
  const summary = `${machine.cpu}, ${machine.cores} cores, ${machine.ramGiB} GiB RAM, Node ${machine.node}, ${machine.postgres}, ${machine.psql}`;
  return { ...machine, summary };
}

function formatTable(rows) {
  const header = ['benchmark', 'dbfast ms', 'floor ms', 'ratio', 'goal', 'result'];
  const lines = rows.map((row) => {
    // A row has a floor measured in the same run and a goal for the ratio, or an absolute goal (goalMs).
    const relative = row.goal !== undefined;
    const pass = relative ? row.ratio <= row.goal : row.dbfastMs <= row.goalMs;
    const unit = row.unit ?? 'ms';
    return [
      row.name,
      `${row.dbfastMs.toFixed(1)}${unit === 'ms' ? '' : ` ${unit}`}`,
      row.floorMs !== undefined ? `${row.floorMs.toFixed(1)}${unit === 'ms' ? '' : ` ${unit}`}` : '-',
      relative ? `${row.ratio.toFixed(2)}x` : '-',
      relative ? `<= ${row.goal.toFixed(2)}x` : `<= ${row.goalMs} ${unit}`,
      pass ? 'pass' : 'MISS',
    ];
  });
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => line[column].length)));
  const format = (cells) =>
    cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join('  ');
  return [format(header), widths.map((width) => '-'.repeat(width)).join('  '), ...lines.map(format)].join('\n');
}
