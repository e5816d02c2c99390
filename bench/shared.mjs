/** What the benchmarks share: a connection, a clean environment, a timed process. */
import { spawn } from 'node:child_process';
import pg from 'pg';

/** Runs `use` on a new connection to `database`, always closed. */
export async function withClient(server, database, use) {
  const client = new pg.Client({ host: server.host, port: server.port, user: server.user, database });
  // Stopping the server (Ctrl-C) ends idle connections with an 'error' event that would crash the process
  // before run.mjs removes its folder; a query on the dead client still rejects.
  client.on('error', () => {});
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

/** The environment without PG* and DBFAST_* variables, for dbfast and the PostgreSQL programs alike. */
export function cleanEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('PG') && !key.startsWith('DBFAST_')));
}

/** Milliseconds a process takes to exit 0; rejects with its stderr otherwise. */
export function timeProcess(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], ...options });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(performance.now() - started) : reject(new Error(`${command} ${args.join(' ')} failed: ${stderr}`))));
  });
}

/**
 * Runs `tools.dbfast` and `tools.floor` `runs` times each, alternating which goes first, after
 * `before()` (a CHECKPOINT, a fresh copy of the target); with `warmUp`, one untimed round first.
 */
export async function alternate(tools, runs, { warmUp, before = async () => {}, onRun = () => {} }) {
  const times = { dbfast: [], floor: [] };
  for (let run = warmUp ? -1 : 0; run < runs; run++) {
    onRun(run + 1);
    for (const tool of run % 2 === 0 ? ['dbfast', 'floor'] : ['floor', 'dbfast']) {
      await before();
      const elapsed = await tools[tool]();
      if (run >= 0) times[tool].push(elapsed);
    }
  }
  return times;
}

/** A benchmark row comparing dbfast's median with the floor's, with every run kept. */
export function comparisonRow(name, times, goal) {
  const dbfastMs = round(median(times.dbfast));
  const floorMs = round(median(times.floor));
  const runsMs = { dbfast: times.dbfast.map(round), floor: times.floor.map(round) };
  return { name, dbfastMs, floorMs, ratio: Math.round((dbfastMs / floorMs) * 100) / 100, goal, runsMs };
}

/** Median; of an even count, the mean of the middle two. */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  return sorted.length % 2 ? sorted[Math.floor(middle)] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export function round(value) {
  return Math.round(value * 10) / 10;
}

/** Drops a database if it exists, ending its connections. */
export async function dropDatabase(admin, name) {
  await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
}

/** Drops every database whose name starts with `prefix`, templates too: what a benchmark left, even after a crash. */
export async function dropDatabasesStartingWith(admin, prefix) {
  const { rows } = await admin.query(`SELECT datname FROM pg_database WHERE datname LIKE '${prefix.replace(/_/g, '\\_')}%'`);
  for (const { datname } of rows) {
    await admin.query(`ALTER DATABASE "${datname}" IS_TEMPLATE false`);
    await dropDatabase(admin, datname);
  }
}

/** ~1 GB: 6.5 million rows of ~150 bytes, with a primary key: the large template the clone, pool and reflink benchmarks copy. */
export const GIGABYTE_TABLE_SQL = `CREATE TABLE public.bulk AS SELECT g AS id, md5(g::text) AS a, md5((g * 7)::text) AS b, now() AS at
  FROM generate_series(1, 6500000) AS g;
ALTER TABLE public.bulk ADD PRIMARY KEY (id);
`;
