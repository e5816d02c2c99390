import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scanRepository } from '../dist/core/scan.js';
import { withSession } from '../dist/core/pg/client.js';
import { embeddedTarget } from '../dist/core/pg/target.js';
import { executeFiles } from '../dist/core/sql/execute.js';
import { withClient } from './shared.mjs';

const CORPUS = fileURLToPath(new URL('../../shared/corpus/', import.meta.url));
const PSQL = process.env.DBFAST_BENCH_PSQL ?? '/usr/bin/psql';
const RUNS = 5;
const GOAL_RATIO = 1.1;
const GENERATED = { files: 20, statementsPerFile: 500 };

/**
 * Each workload names its repository and a check run after every load, so a run that silently did
 * less work (wrong database, skipped file) fails loudly instead of being timed as fast.
 */
const WORKLOADS = [
  {
    name: 'pagila (pg_dump, COPY)',
    root: () => join(CORPUS, 'pagila'),
    check: { sql: 'select (select count(*) from public.rental) + (select count(*) from public.payment)', expect: '32093' },
  },
  {
    name: 'chinook (multi-row INSERT)',
    root: () => join(CORPUS, 'chinook'),
    check: { sql: 'select (select count(*) from playlist_track) + (select count(*) from track)', expect: '12218' },
  },
  {
    name: 'northwind (3,362 INSERTs)',
    root: () => join(CORPUS, 'northwind'),
    check: { sql: 'select (select count(*) from order_details) + (select count(*) from orders)', expect: '2985' },
  },
  {
    name: `generated (${GENERATED.files} files x ${GENERATED.statementsPerFile} statements)`,
    root: generateSmallStatements,
    check: { sql: 'select sum(total) from bench_totals', expect: String(GENERATED.files * GENERATED.statementsPerFile) },
    generated: true,
  },
];

/**
 * Loads each workload into a fresh database with dbfast (connect + executeFiles, in this process) and with
 * one `psql -f A -f B ...` process, alternating which goes first so both share any drift of the server.
 * Rows: `{ name, dbfastMs, floorMs, ratio, goal, runsMs }`, medians of RUNS timed runs after one untimed warm-up.
 */
export async function benchExecute(server) {
  const rows = [];
  await withClient(server, 'postgres', async (admin) => {
    for (const workload of WORKLOADS) {
      const root = await workload.root();
      try {
        const { files } = await scanRepository({ root });
        const tools = {
          dbfast: (database) => loadWithDbfast(server, database, files, root),
          floor: (database) => loadWithPsql(server, database, files),
        };
        const timings = { dbfast: [], floor: [] };
        for (let run = -1; run < RUNS; run++) {
          const order = run % 2 === 0 ? ['dbfast', 'floor'] : ['floor', 'dbfast'];
          for (const tool of order) {
            const ms = await withDatabase(admin, `bench_execute_${tool}`, async (database) => {
              const started = performance.now();
              await tools[tool](database);
              const elapsed = performance.now() - started;
              await verify(server, database, workload, tool);
              return elapsed;
            });
            if (run >= 0) timings[tool].push(ms);
          }
        }
        const dbfastMs = median(timings.dbfast);
        const floorMs = median(timings.floor);
        const ratio = round(dbfastMs / floorMs, 100);
        // Every timing kept for results.json: on a shared machine the spread says whether a miss is noise.
        const runsMs = { dbfast: timings.dbfast.map((ms) => round(ms, 10)), floor: timings.floor.map((ms) => round(ms, 10)) };
        rows.push({ name: workload.name, dbfastMs, floorMs, ratio, goal: GOAL_RATIO, runsMs });
      } finally {
        if (workload.generated) await rm(root, { recursive: true, force: true });
      }
    }
  });
  return rows;
}

async function loadWithDbfast(server, database, files, repositoryRoot) {
  await withSession(embeddedTarget(server), database, (session) => executeFiles(session, files, { repositoryRoot }));
}

function loadWithPsql(server, database, files) {
  const args = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', server.host, '-p', String(server.port), '-U', server.user];
  args.push('-d', database, ...files.flatMap((file) => ['-f', file.absolutePath]));
  // PG* variables (PGOPTIONS, PGSSLMODE, ...) would make psql's session differ from dbfast's.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('PG')));
  return new Promise((resolvePromise, reject) => {
    // stdout to /dev/null: result sets (pagila's setval calls) would otherwise cost a pipe to this process.
    const child = spawn(PSQL, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolvePromise();
      else reject(new Error(`psql exited with ${code}: ${stderr.trim()}`));
    });
  });
}

async function verify(server, database, workload, tool) {
  const actual = await withClient(server, database, async (client) => {
    const { rows } = await client.query({ text: workload.check.sql, rowMode: 'array' });
    return String(rows[0][0]);
  });
  if (actual !== workload.check.expect) {
    throw new Error(`${workload.name}: ${tool} run gave ${actual}, expected ${workload.check.expect} (${workload.check.sql})`);
  }
}

async function withDatabase(admin, database, use) {
  await admin.query(`drop database if exists ${database}`);
  await admin.query(`create database ${database}`);
  try {
    return await use(database);
  } finally {
    await admin.query(`drop database if exists ${database}`);
  }
}

/**
 * Many small statements, the case where per-statement round trips dominate: per file a table, single-row
 * INSERTs, UPDATEs, an index and a comment, and a row in `bench_totals` counting the file's statements.
 */
async function generateSmallStatements() {
  const root = await mkdtemp(join(tmpdir(), 'dbfast-bench-execute-'));
  await mkdir(join(root, '0_setup'));
  await writeFile(join(root, '0_setup', 'totals.sql'), 'create table bench_totals (file int primary key, total int not null);\n');
  const { files, statementsPerFile } = GENERATED;
  for (let file = 0; file < files; file++) {
    const table = `items_${file}`;
    const lines = [
      `create table ${table} (id int primary key, name text not null, qty int not null default 0, note text);`,
      `comment on table ${table} is 'generated by the execute benchmark';`,
    ];
    const inserts = statementsPerFile - 5;
    for (let i = 0; i < inserts; i++) {
      lines.push(
        i % 10 === 9
          ? `update ${table} set qty = qty + 1, note = 'it''s row ${i - 1}' where id = ${i - 1};`
          : `insert into ${table} (id, name, qty) values (${i}, 'item ${file}-${i}', ${i % 7});`,
      );
    }
    lines.push(`create index ${table}_name on ${table} (name);`);
    lines.push(`analyze ${table};`);
    lines.push(`insert into bench_totals values (${file}, ${statementsPerFile});`);
    const folder = join(root, '1_items');
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, `${String(file).padStart(2, '0')}_items.sql`), `${lines.join('\n')}\n`);
  }
  return resolve(root);
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return round(sorted[Math.floor(sorted.length / 2)], 10);
}

function round(value, scale) {
  return Math.round(value * scale) / scale;
}

