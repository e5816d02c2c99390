/**
 * `dbfast serve` as IntegreSQL clients use it: the server a child process (its own event loop, as in
 * real use), 8 clients on keep-alive fetch. GET .../tests latency on a warm pool (each client uses
 * its copy, then unlocks it), against GET /healthz just before; databases handed out per second when
 * clients unlock them (reuse) and when they never do (at its maximum the pool recycles the oldest: a
 * fresh database each time), against 8 connections running CREATE DATABASE ... TEMPLATE ... STRATEGY
 * FILE_COPY on the same template (what serve runs on PostgreSQL 15), and against serve's own SQL per
 * recycled copy (DROP + CREATE DATABASE) from as many connections as serve copies at once. The rates
 * are measured in rounds that alternate the order, each after serve has settled, so that a busy
 * machine burdens every side alike.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { cleanEnv, dropDatabasesStartingWith, median, round, withClient } from './shared.mjs';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const HASH = 'bench-serve-0123456789abcdef';
const CLIENTS = 8;
/** Ready copies kept per template; the pool grows to MAX_POOL, so 8 clients never wait for a copy on a warm pool. */
const INITIAL_POOL = 16;
const MAX_POOL = 32;
/** Per client: GETs of the latency phase, after untimed ones. */
const LATENCY_GETS = 60;
const WARM_UP_GETS = 5;
/** What a test does with its copy between GET and unlock, besides connecting and one query. */
const TEST_MS = 20;
/** Per round: GET + unlock cycles (all clients), fresh databases through serve, CREATE DATABASE for the floor. */
const REUSE_GETS = 200;
const FRESH_DATABASES = 16;
const ROUNDS = 3;
const FLOOR_PREFIX = 'bench_serve_floor_';
/** INTEGRESQL_TEST_DB_MINIMAL_LIFETIME_MS's default: a copy handed out is not recycled sooner. */
const MINIMAL_LIFETIME_MS = 250;
/** Copies serve makes at once: INTEGRESQL_POOL_MAX_PARALLEL_TASKS, by default the CPU count, as IntegreSQL's. */
const SERVE_PARALLEL = availableParallelism();

export async function benchServe(server) {
  const url = `postgresql://${server.user}@${server.host}:${server.port}/postgres`;
  const work = await mkdtemp(join(tmpdir(), 'dbfast-bench-serve-'));
  let serve;
  try {
    await mkdir(join(work, 'db'));
    await writeFile(join(work, 'dbfast.toml'), '[database]\ntemplate_name = "bench_serve"\n');
    serve = await startServe(work, url);
    const { api } = serve;
    const template = await initializeTemplate(api);
    await warmPool(api);
    const latency = await measureLatency(api);
    const rates = await withClient(server, 'postgres', (admin) => measureRates(api, server, admin, template));
    return [...latencyRows(latency), ...rateRows(rates)];
  } finally {
    if (serve) {
      await serve.api.discardAll().catch((error) => console.error(`could not discard the templates: ${error.message}`));
      const code = await serve.stop();
      const said = serve.stderr().replace(/^(serving|stopping).*\n/gm, '');
      if (code !== 0 || said !== '') console.error(`dbfast serve exited with ${code}${said ? `, after:\n${said}` : ''}`);
    }
    await withClient(server, 'postgres', async (admin) => {
      await dropDatabasesStartingWith(admin, FLOOR_PREFIX);
      // What a failed run left: DELETE /api/v1/admin/templates drops everything serve made.
      await dropDatabasesStartingWith(admin, 'dbfast_serve_');
    });
    await rm(work, { recursive: true, force: true });
  }
}

function latencyRows(latency) {
  const p50 = round(percentile(latency.dbfast, 0.5));
  const healthP50 = round(percentile(latency.floor, 0.5));
  const test = `${CLIENTS} clients, warm pool, a test = connect, query, ${TEST_MS} ms, unlock`;
  return [
    { name: `GET .../tests p50, ${test} (goal <= 5 ms)`, dbfastMs: p50, goalMs: 5 },
    { name: 'GET .../tests p95, same', dbfastMs: round(percentile(latency.dbfast, 0.95)), goalMs: 20 },
    {
      name: 'GET .../tests p50, same, vs GET /healthz p50 just before it (the HTTP round trip alone)',
      dbfastMs: p50,
      floorMs: healthP50,
      ratio: hundredths(p50 / healthP50),
      goal: 3,
    },
  ];
}

function rateRows(times) {
  const row = (name, runs, floorRuns, goal) => {
    const dbfastMs = median(runs);
    const floorMs = median(floorRuns);
    return {
      name: `${name} (${round(1000 / dbfastMs)} vs ${round(1000 / floorMs)} per s)`,
      dbfastMs: hundredths(dbfastMs),
      floorMs: hundredths(floorMs),
      ratio: hundredths(dbfastMs / floorMs),
      goal,
      runsMs: { dbfast: runs.map(hundredths), floor: floorRuns.map(hundredths) },
    };
  };
  const floor = `CREATE DATABASE from ${CLIENTS} connections`;
  return [
    row(`per database, GET + unlock back to back (reuse), ${CLIENTS} clients, vs ${floor}`, times.reuse, times.floor, 0.25),
    row(`per fresh database, no unlock (recycled at max pool, ${SERVE_PARALLEL} at a time), vs ${floor}`, times.fresh, times.floor, 1.5),
    row(`per fresh database, same, vs DROP + CREATE DATABASE from ${SERVE_PARALLEL} connections (serve's SQL)`, times.fresh, times.dropFloor, 1.2),
  ];
}

/**
 * ROUNDS rounds of four steps in alternating order, each after serve has settled: milliseconds per
 * database for GET + unlock, for fresh databases through serve, for CREATE DATABASE from CLIENTS
 * connections, and for DROP + CREATE DATABASE from SERVE_PARALLEL connections.
 */
async function measureRates(api, server, admin, template) {
  const times = { reuse: [], fresh: [], floor: [], dropFloor: [] };
  for (let turn = 0; turn < ROUNDS; turn++) {
    const steps = [
      async () => times.floor.push(await measureCreateDatabase(server, template, { connections: CLIENTS, dropFirst: false })),
      async () => times.dropFloor.push(await measureCreateDatabase(server, template, { connections: SERVE_PARALLEL, dropFirst: true })),
      async () => times.reuse.push(await measureReuse(api)),
      async () => times.fresh.push(await measureRecycling(api)),
    ];
    for (const step of turn % 2 === 0 ? steps : steps.reverse()) {
      await untilSettled(admin);
      await step();
    }
  }
  return times;
}

/** `dbfast serve --port 0` in `cwd`, once it printed its URL (the only line on its stdout). */
function startServe(cwd, url) {
  const args = [CLI, 'serve', '--port', '0', '--initial-pool-size', String(INITIAL_POOL), '--max-pool-size', String(MAX_POOL)];
  // IntegreSQL's defaults, whatever the caller's INTEGRESQL_* variables say.
  const env = Object.fromEntries(Object.entries(cleanEnv()).filter(([key]) => !key.startsWith('INTEGRESQL_')));
  const child = spawn(process.execPath, args, { cwd, env: { ...env, NO_COLOR: '1', DBFAST_DATABASE_URL: url }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
  const exited = once(child, 'exit');
  return new Promise((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      stdout += chunk;
      const found = /^(http:\/\/\S+)\n/.exec(stdout)?.[1];
      if (!found) return;
      resolve({
        url: found,
        api: apiClient(found),
        stderr: () => stderr,
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          return (await exited)[0];
        },
      });
    });
    exited.then(([code]) => reject(new Error(`dbfast serve exited with ${code}: ${stderr}`)));
  });
}

/** IntegreSQL's API v1 for the one template, and /healthz; a status not expected throws with the server's message. */
function apiClient(base) {
  const call = async (method, path, expected, body) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: body === undefined ? undefined : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (![expected].flat().includes(response.status)) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return text === '' ? undefined : JSON.parse(text);
  };
  const template = `/api/v1/templates/${encodeURIComponent(HASH)}`;
  return {
    health: () => call('GET', '/healthz', 200),
    initialize: () => call('POST', '/api/v1/templates', 200, { hash: HASH }),
    finalize: () => call('PUT', template, 204),
    getTest: () => call('GET', `${template}/tests`, 200),
    unlock: (id) => call('POST', `${template}/tests/${id}/unlock`, 204),
    /** 404 too: a copy recycled since it was handed out has a new id, under which it was handed out again. */
    unlockIfCurrent: (id) => call('POST', `${template}/tests/${id}/unlock`, [204, 404]),
    discardAll: () => call('DELETE', '/api/v1/admin/templates', 204),
  };
}

function connectTo({ host, port, username, password, database }) {
  return new pg.Client({ host, port, user: username, password, database });
}

/** A small schema (~4 MB of rows and indexes) filled through the answer's config, as a client does, then finalised. */
async function initializeTemplate(api) {
  const { database } = await api.initialize();
  const client = connectTo(database.config);
  await client.connect();
  try {
    await client.query(`
      CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL UNIQUE, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
      CREATE TABLE products (id serial PRIMARY KEY, name text NOT NULL, price numeric(10, 2) NOT NULL CHECK (price >= 0));
      CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, product_id int NOT NULL REFERENCES products,
        quantity int NOT NULL, ordered_at timestamptz NOT NULL DEFAULT now());
      CREATE INDEX orders_customer ON orders (customer_id);
      INSERT INTO customers (email, name) SELECT 'user' || g || '@example.com', 'User ' || g FROM generate_series(1, 10000) g;
      INSERT INTO products (name, price) SELECT 'Product ' || g, (g % 100) + 0.99 FROM generate_series(1, 1000) g;
      INSERT INTO orders (customer_id, product_id, quantity) SELECT 1 + g % 10000, 1 + g % 1000, 1 + g % 5 FROM generate_series(1, 30000) g;
      ANALYZE;`);
  } finally {
    await client.end();
  }
  await api.finalize();
  return database.config.database;
}

/**
 * Takes MAX_POOL copies at once (those beyond the initial pool are made meanwhile) and unlocks them: a
 * full pool, every copy ready. Copies taken first and never connected to may be recycled (a new id,
 * ready) while the last are still being made: their unlock is a 404.
 */
async function warmPool(api) {
  const taken = await Promise.all(Array.from({ length: MAX_POOL }, () => api.getTest()));
  if (new Set(taken.map((test) => test.database.config.database)).size !== MAX_POOL) throw new Error('dbfast serve handed out a copy twice');
  await Promise.all(taken.map((test) => api.unlockIfCurrent(test.id)));
}

/**
 * Each client, as a test: GET /healthz (the HTTP round trip alone, timed: the floor), GET a copy (timed),
 * connect to it, query, work TEST_MS, disconnect, unlock.
 */
async function measureLatency(api) {
  const times = { dbfast: [], floor: [] };
  const client = async (gets, timed) => {
    for (let get = 0; get < gets; get++) {
      let started = performance.now();
      await api.health();
      if (timed) times.floor.push(performance.now() - started);
      started = performance.now();
      const test = await api.getTest();
      if (timed) times.dbfast.push(performance.now() - started);
      const database = connectTo(test.database.config);
      await database.connect();
      await database.query('SELECT count(*) FROM orders WHERE customer_id = 42');
      await sleep(TEST_MS);
      await database.end();
      await api.unlock(test.id);
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, () => client(WARM_UP_GETS, false)));
  await Promise.all(Array.from({ length: CLIENTS }, () => client(LATENCY_GETS, true)));
  return times;
}

/** Milliseconds per database: REUSE_GETS GET + unlock cycles from CLIENTS clients, back to back. */
async function measureReuse(api) {
  let remaining = REUSE_GETS;
  const client = async () => {
    while (remaining-- > 0) await api.unlock((await api.getTest()).id);
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, client));
  return (performance.now() - started) / REUSE_GETS;
}

/**
 * Milliseconds per fresh database for clients that never return a copy (as @devoxa/integresql-client):
 * the MAX_POOL copies, all ready, are taken untimed, then each one handed out is recycled for it.
 * The copies are unlocked afterwards, a warm pool again (those recycled meanwhile have new ids: 404).
 */
async function measureRecycling(api) {
  const handedOut = new Set();
  let remaining = MAX_POOL;
  const client = async () => {
    while (remaining-- > 0) handedOut.add((await api.getTest()).id);
  };
  await Promise.all(Array.from({ length: CLIENTS }, client));
  // Copies are recycled once handed out this long ago: in a steady state they are.
  await sleep(MINIMAL_LIFETIME_MS);
  remaining = FRESH_DATABASES;
  const started = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, client));
  const elapsed = performance.now() - started;
  await Promise.all([...handedOut].map((id) => api.unlockIfCurrent(id)));
  return elapsed / FRESH_DATABASES;
}

/**
 * A floor, milliseconds per database: FRESH_DATABASES copies of the template from `connections`
 * connections; with `dropFirst`, each replaces one made beforehand (untimed), as serve recycles a copy.
 */
async function measureCreateDatabase(server, template, { connections, dropFirst }) {
  const create = (index) => `CREATE DATABASE ${FLOOR_PREFIX}${index} TEMPLATE "${template}" STRATEGY FILE_COPY`;
  const fromConnections = async (count, work) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: count }, () =>
        withClient(server, 'postgres', async (admin) => {
          while (next < FRESH_DATABASES) await work(admin, next++);
        }),
      ),
    );
  };
  if (dropFirst) {
    await fromConnections(CLIENTS, (admin, index) => admin.query(create(index)));
    await withClient(server, 'postgres', (admin) => admin.query('CHECKPOINT'));
  }
  const started = performance.now();
  await fromConnections(connections, async (admin, index) => {
    if (dropFirst) await admin.query(`DROP DATABASE ${FLOOR_PREFIX}${index}`);
    await admin.query(create(index));
  });
  const elapsed = performance.now() - started;
  await withClient(server, 'postgres', (admin) => dropDatabasesStartingWith(admin, FLOOR_PREFIX));
  return elapsed / FRESH_DATABASES;
}

/** Until no database is being created or dropped (two looks 100 ms apart), then a checkpoint: each step starts alike. */
async function untilSettled(admin) {
  for (let quiet = 0, tries = 0; quiet < 2; tries++) {
    if (tries > 600) throw new Error('dbfast serve was still copying after a minute');
    const { rows } = await admin.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND state = 'active' AND query ~* '^\\s*(CREATE|DROP) DATABASE'`,
    );
    quiet = rows[0].n > 0 ? 0 : quiet + 1;
    await sleep(100);
  }
  await admin.query('CHECKPOINT');
}

function percentile(values, fraction) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))];
}

function hundredths(value) {
  return Math.round(value * 100) / 100;
}
