/**
 * Peak memory while loading large SQL files: dbfast's executor (a child process) against `psql -f`,
 * on generated files shaped like real ones: a pg_dump with one large COPY block, a file of
 * single-row INSERTs, and one huge statement on a single line. Size with DBFAST_BENCH_MEMORY_MB
 * (the dump's size; default 1024).
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const PSQL = process.env.DBFAST_BENCH_PSQL ?? '/usr/bin/psql';
const LOADER = fileURLToPath(new URL('./memory-load.mjs', import.meta.url));
const DUMP_MB = Number(process.env.DBFAST_BENCH_MEMORY_MB ?? 1024);
const GOAL_MB = 150;
const MB = 1 << 20;

const WORKLOADS = [
  { name: `pg_dump file, ${DUMP_MB} MB (COPY)`, write: (out) => writeDump(out, DUMP_MB * MB), rows: 'select count(*) from big' },
  { name: '100 MB of single-row INSERTs', write: (out) => writeInserts(out, 100 * MB), rows: 'select count(*) from big' },
  // One statement must be held whole (psql holds it too): the goal is psql's own peak.
  { name: '45 MB statement on one line', write: (out) => writeOneLine(out, 45 * MB), rows: 'select count(*) from big', goal: 'psql' },
];

/**
 * Rows `{ name, unit: 'MB', dbfastMs (peak MB), floorMs (psql's), goalMs }` plus the load times. The
 * goal is 150 MB whatever the file's size, except for one huge statement, which must not cost more
 * than it costs psql.
 */
export async function benchMemory(server) {
  const folder = await mkdtemp(join(tmpdir(), 'dbfast-bench-memory-'));
  const rows = [];
  try {
    for (const workload of WORKLOADS) {
      const file = join(folder, 'load.sql');
      await write(file, workload.write);
      const results = {};
      for (const tool of ['dbfast', 'psql']) {
        results[tool] = await withDatabase(server, `bench_memory_${tool}`, async (database) => {
          const started = performance.now();
          const peakBytes = tool === 'dbfast' ? await loadWithDbfast(server, database, file) : await loadWithPsql(server, database, file);
          const ms = performance.now() - started;
          const count = await scalar(server, database, workload.rows);
          return { peakMb: Math.round(peakBytes / MB), ms, count };
        });
      }
      if (results.dbfast.count !== results.psql.count) {
        throw new Error(`${workload.name}: dbfast loaded ${results.dbfast.count} rows, psql ${results.psql.count}`);
      }
      const goalMs = workload.goal === 'psql' ? results.psql.peakMb : GOAL_MB;
      rows.push({ name: `${workload.name}: peak RSS`, unit: 'MB', dbfastMs: results.dbfast.peakMb, floorMs: results.psql.peakMb, goalMs });
      const ratio = Math.round((results.dbfast.ms / results.psql.ms) * 100) / 100;
      rows.push({ name: `${workload.name}: load time`, dbfastMs: results.dbfast.ms, floorMs: results.psql.ms, ratio, goal: 1.1 });
      await rm(file);
    }
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
  return rows;
}

async function write(file, generate) {
  const out = createWriteStream(file);
  const put = (text) => (out.write(text) ? undefined : new Promise((resolve) => out.once('drain', resolve)));
  await generate(put);
  await new Promise((resolve, reject) => out.end((error) => (error ? reject(error) : resolve())));
}

const NOTE = 'lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor';

async function writeDump(put, bytes) {
  await put("SET statement_timeout = 0;\nSET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\n");
  await put('CREATE TABLE public.big (id integer NOT NULL, created date, note text);\n\n');
  await put('COPY public.big (id, created, note) FROM stdin;\n');
  let written = 0;
  for (let id = 1; written < bytes; id++) {
    const lines = [];
    for (let i = 0; i < 1000; i++, id++) lines.push(`${id}\t2024-01-${String((id % 28) + 1).padStart(2, '0')}\t${NOTE} ${id}\n`);
    const chunk = lines.join('');
    written += chunk.length;
    await put(chunk);
  }
  await put('\\.\n\nALTER TABLE ONLY public.big ADD CONSTRAINT big_pkey PRIMARY KEY (id);\n');
}

async function writeInserts(put, bytes) {
  await put('CREATE TABLE big (id integer PRIMARY KEY, note text);\n');
  let written = 0;
  for (let id = 1; written < bytes; ) {
    const lines = [];
    for (let i = 0; i < 1000; i++, id++) lines.push(`INSERT INTO big (id, note) VALUES (${id}, '${NOTE} ${id}');\n`);
    const chunk = lines.join('');
    written += chunk.length;
    await put(chunk);
  }
}

async function writeOneLine(put, bytes) {
  await put('CREATE TABLE big (id integer PRIMARY KEY, note text);\nINSERT INTO big (id, note) VALUES ');
  let written = 0;
  for (let id = 1; written < bytes; ) {
    const values = [];
    for (let i = 0; i < 1000; i++, id++) values.push(`(${id}, '${NOTE} ${id}')`);
    const chunk = `${id > 1001 ? ', ' : ''}${values.join(', ')}`;
    written += chunk.length;
    await put(chunk);
  }
  await put(';\n');
}

function loadWithDbfast(server, database, file) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const child = spawn(process.execPath, [LOADER, server.host, String(server.port), server.user, database, file], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env,
    });
    let out = '';
    child.stdout.on('data', (data) => (out += data));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out).maxRssBytes) : reject(new Error(`dbfast load exited ${code}`))));
  });
}

/** psql's peak RSS, polled from /proc while it runs (its memory does not spike: it reads line by line). */
function loadWithPsql(server, database, file) {
  const args = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', server.host, '-p', String(server.port), '-U', server.user, '-d', database];
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('PG')));
  return new Promise((resolve, reject) => {
    const child = spawn(PSQL, [...args, '-o', '/dev/null', '-f', file], { stdio: 'inherit', env });
    let peak = 0;
    const poll = setInterval(async () => {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8').catch(() => '');
      const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      peak = Math.max(peak, kb * 1024);
    }, 20);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(poll);
      if (code === 0) resolve(peak);
      else reject(new Error(`psql exited ${code}`));
    });
  });
}

async function withDatabase(server, database, use) {
  await adminQuery(server, `DROP DATABASE IF EXISTS ${database}`);
  await adminQuery(server, `CREATE DATABASE ${database}`);
  try {
    return await use(database);
  } finally {
    await adminQuery(server, `DROP DATABASE IF EXISTS ${database}`);
  }
}

async function adminQuery(server, sql) {
  return scalar(server, 'postgres', sql);
}

async function scalar(server, database, sql) {
  const client = new pg.Client({ host: server.host, port: server.port, user: server.user, database });
  await client.connect();
  try {
    const { rows } = await client.query({ text: sql, rowMode: 'array' });
    return rows[0]?.[0];
  } finally {
    await client.end();
  }
}
