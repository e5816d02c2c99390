/**
 * dbfast serve: a real server process on loopback, on a PostgreSQL server of its own (one serve
 * manages a server's test databases), driven by @devoxa/integresql-client unchanged and by plain
 * requests for every status code.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { IntegreSQLApiClient, IntegreSQLClient, type IntegreSQLDatabaseConfig } from '@devoxa/integresql-client';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { REPO_ROOT, runCli, testServerUrl } from '../helpers/cli.js';
import { query } from '../helpers/database.js';
import { tempRepo } from '../helpers/repo.js';
import { type Answer, call, type ServeProcess, serveExit, startServe } from '../helpers/serve.js';
import { startServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let root: string;
let env: Record<string, string>;
const running = new Set<ServeProcess>();

beforeAll(async () => {
  server = await startServer();
  root = await tempRepo({
    'dbfast.toml': '[database]\ntemplate_name = "served_template"\n',
    'db/0_schema/01_posts.sql': 'CREATE TABLE posts (id int PRIMARY KEY, title text);\n',
    'db/1_seed/01_posts.sql': "INSERT INTO posts VALUES (1, 'hello');\n",
  });
  env = { DBFAST_DATABASE_URL: testServerUrl(server.port) };
});

afterAll(async () => {
  for (const serve of running) await serve.stop('SIGKILL');
  await server?.stop();
  await rm(root, { recursive: true, force: true });
});

afterEach(async () => {
  for (const serve of running) await serve.stop();
  running.clear();
  // Every test starts from a server without serve's databases, and leaves none behind.
  const left = await runCli(['clean', '--serve'], { cwd: root, env });
  expect(left.code, left.stderr).toBe(0);
});

async function serve(args: string[] = [], extra: Record<string, string> = {}): Promise<ServeProcess> {
  const started = await startServe(root, { ...env, ...extra }, args);
  running.add(started);
  return started;
}

async function sql<T extends pg.QueryResultRow = pg.QueryResultRow>(database: string, text: string) {
  const rows = await query<T>(database, text, server.port);
  return { rows, rowCount: rows.length };
}

async function servedDatabases(): Promise<string[]> {
  const { rows } = await sql<{ datname: string }>('postgres', "SELECT datname FROM pg_database WHERE datname LIKE 'dbfast\\_serve\\_%' ORDER BY 1");
  return rows.map((row) => row.datname);
}

/** Template databases marked by serve: created and recorded, not merely being created. */
async function markedTemplates(): Promise<string[]> {
  const { rows } = await sql<{ datname: string }>(
    'postgres',
    `SELECT datname FROM pg_database WHERE shobj_description(oid, 'pg_database') LIKE '{"dbfast":{"kind":"serve-template"%' ORDER BY 1`,
  );
  return rows.map((row) => row.datname);
}

async function withDatabase<T>(config: IntegreSQLDatabaseConfig, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ host: config.host, port: config.port, user: config.username, password: config.password, database: config.database });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const POSTS = async (config: IntegreSQLDatabaseConfig) => {
  await withDatabase(config, (client) => client.query("CREATE TABLE users (name text); INSERT INTO users VALUES ('foo')"));
};

/** A GET with the path sent as it is (fetch would normalise it). */
function rawGet(url: string, path: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(url);
    const request = httpRequest({ host: hostname, port, path, method: 'GET' }, (response) => {
      let text = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) }));
    });
    request.on('error', reject).end();
  });
}

/**
 * One test-runner worker in a process of its own: gets a database with the npm client, writes its
 * name, waits for the others to write into theirs, and prints what it sees as JSON.
 */
const WORKER = `
  import { createRequire } from 'node:module';
  import pg from 'pg';
  const { IntegreSQLApiClient } = createRequire(process.cwd() + '/')('@devoxa/integresql-client');
  const [url, hash, worker] = process.argv.slice(1);
  const { id, database } = await new IntegreSQLApiClient({ url }).getTestDatabase(hash);
  const { host, port, username: user, password, database: name } = database.config;
  const db = new pg.Client({ host, port, user, password, database: name });
  await db.connect();
  await db.query('INSERT INTO users VALUES ($1)', ['worker ' + worker]);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const seen = (await db.query('SELECT name FROM users ORDER BY name')).rows.map((row) => row.name);
  await db.end();
  console.log(JSON.stringify({ id, name, seen, worker: Number(worker) }));
`;

function runWorker(url: string, hash: string, worker: number): Promise<{ id: number; name: string; seen: string[]; worker: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', WORKER, url, hash, String(worker)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(stdout)) : reject(new Error(`worker ${worker} exited with ${code}: ${stderr}`))));
  });
}

function expectJsonError(answer: Answer, status: number, message: RegExp): void {
  expect(answer.status).toBe(status);
  expect(answer.contentType).toMatch(/^application\/json/);
  expect((answer.body as { message: string }).message).toMatch(message);
}

describe('dbfast serve with @devoxa/integresql-client', () => {
  test('its documented flow: initialise with a setup callback, finalise, 8 worker processes in parallel each get an isolated database, return and reuse', async () => {
    // No copies made ahead: after the returns, the pool holds exactly the returned ones.
    const { url } = await serve(['--initial-pool-size', '0', '--max-pool-size', '16']);
    const client = new IntegreSQLClient({ url });
    const hash = createHash('sha1').update('migrations v1').digest('hex');
    let setups = 0;
    await client.initializeTemplate(hash, async (config) => {
      setups++;
      expect(typeof config.port).toBe('number');
      await POSTS(config);
    });
    // A second test process with the same hash: 423, so its callback never runs.
    await new IntegreSQLClient({ url }).initializeTemplate(hash, async () => {
      setups++;
    });
    expect(setups).toBe(1);

    // 8 worker processes, as a test runner's: each its own client, its own database, its own write.
    const workers = Array.from({ length: 8 }, (_, worker) => () => runWorker(url, hash, worker));
    const results = await Promise.all(workers.map((work) => work()));
    expect(new Set(results.map((result) => result.name)).size).toBe(8);
    for (const result of results) expect(result.seen).toEqual(['foo', `worker ${result.worker}`]);

    // Returned with the deprecated DELETE .../tests/:id (what this client calls), then handed out again as they are.
    const api = new IntegreSQLApiClient({ url });
    for (const result of results) await api.reuseTestDatabase(hash, result.id);
    const again = await api.getTestDatabase(hash);
    expect(results.map((result) => result.name)).toContain(again.database.config.database);
    // Returned, it has a new id: the old one can no longer reach whoever holds it now.
    expect(results.map((result) => result.id)).not.toContain(again.id);
    // Recreate: a fresh copy of the template, without what a worker wrote.
    await api.recreateTestDatabase(hash, again.id);
    await expect.poll(async () => (await sql<{ n: number }>(again.database.config.database, 'SELECT count(*)::int AS n FROM users')).rows[0]!.n).toBe(1);
  });

  test('GET .../tests blocks until the template is finalised: a client that got 423 returns at once and then waits there', async () => {
    const { url } = await serve(['--initial-pool-size', '1']);
    const hash = createHash('sha256').update('slow setup').digest('hex');
    const first = new IntegreSQLApiClient({ url });
    const { database } = await first.initializeTemplate(hash);
    await POSTS(database.config);

    const second = new IntegreSQLClient({ url });
    await second.initializeTemplate(hash, async () => {
      throw new Error('the second client must not set up the template');
    });
    let handedOut: IntegreSQLDatabaseConfig | undefined;
    const waiting = second.getTestDatabase(hash).then((config) => (handedOut = config));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(handedOut).toBeUndefined();

    await first.finalizeTemplate(hash);
    const config = await waiting;
    expect((await sql<{ name: string }>(config.database, 'SELECT name FROM users')).rows).toEqual([{ name: 'foo' }]);
    // A SHA-256 hash (64 characters) still gives names within PostgreSQL's 63 bytes.
    expect(Buffer.byteLength(config.database)).toBeLessThanOrEqual(63);
  });
});

describe('dbfast serve: IntegreSQL status codes', () => {
  test('initialise: 200, then 423 (a concurrent second one waits for the first database), 400 without a hash or JSON', async () => {
    const { url } = await serve();
    // What the server holds the moment each answer arrives: the 423 must come once the first one's database exists.
    const initialise = (path: string) =>
      call(url, 'POST', path, { hash: 'h1' }).then(async (answer) => ({ answer, marked: await markedTemplates() }));
    const [a, b] = await Promise.all([initialise('/api/v1/templates'), initialise('/api/v1/templates/')]);
    expect([a.answer.status, b.answer.status].sort()).toEqual([200, 423]);
    const [ok, locked] = a.answer.status === 200 ? [a, b] : [b, a];
    const created = ok.answer.body as { database: { templateHash: string; config: IntegreSQLDatabaseConfig } };
    expect(locked.marked).toEqual([created.database.config.database]);
    expect(created.database.templateHash).toBe('h1');
    expect(created.database.config).toEqual({ host: '127.0.0.1', port: server.port, username: 'postgres', password: '', database: expect.stringMatching(/^dbfast_serve_/) });
    expect(await servedDatabases()).toEqual([created.database.config.database]);
    expectJsonError(await call(url, 'POST', '/api/v1/templates', { hash: 'h1' }), 423, /already initialized/);

    const before = await servedDatabases();
    expectJsonError(await call(url, 'POST', '/api/v1/templates', {}), 400, /hash is required/);
    expectJsonError(await call(url, 'POST', '/api/v1/templates', { hash: '' }), 400, /hash is required/);
    expectJsonError(await call(url, 'POST', '/api/v1/templates', { hash: 42 }), 400, /hash is required/);
    expectJsonError(await call(url, 'POST', '/api/v1/templates'), 400, /hash is required/);
    expectJsonError(await call(url, 'POST', '/api/v1/templates', '{"hash": '), 400, /not valid JSON/);
    expect(await servedDatabases()).toEqual(before);
  });

  test('finalise: 204, twice 204, 404 unknown; discard: 204, 404 unknown; GET after a discard: 404', async () => {
    const { url } = await serve(['--initial-pool-size', '1']);
    expect((await call(url, 'POST', '/api/v1/templates', { hash: 'h2' })).status).toBe(200);
    expect((await call(url, 'PUT', '/api/v1/templates/h2')).status).toBe(204);
    expect((await call(url, 'PUT', '/api/v1/templates/h2/')).status).toBe(204);
    expectJsonError(await call(url, 'PUT', '/api/v1/templates/nope'), 404, /template not found/);
    const test = await call(url, 'GET', '/api/v1/templates/h2/tests');
    expect(test.status).toBe(200);
    expect(test.body).toMatchObject({ id: expect.any(Number), database: { templateHash: 'h2' } });

    expect((await call(url, 'DELETE', '/api/v1/templates/h2')).status).toBe(204);
    expect(await servedDatabases()).toEqual([]);
    expectJsonError(await call(url, 'DELETE', '/api/v1/templates/h2'), 404, /template not found/);
    expectJsonError(await call(url, 'GET', '/api/v1/templates/h2/tests'), 404, /template not found/);
    // After a discard the hash is free again.
    expect((await call(url, 'POST', '/api/v1/templates', { hash: 'h2' })).status).toBe(200);
  });

  test('410 to a GET waiting for a template that is discarded meanwhile', async () => {
    const { url } = await serve();
    await call(url, 'POST', '/api/v1/templates', { hash: 'h3' });
    const waiting = call(url, 'GET', '/api/v1/templates/h3/tests');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await call(url, 'DELETE', '/api/v1/templates/h3')).status).toBe(204);
    expectJsonError(await waiting, 410, /discarded/);
  });

  test('unlock, recreate and the deprecated DELETE: 204; unknown id 404, non-numeric id 400, a database in use 423', async () => {
    // No copies made ahead: what the server holds changes only by these requests.
    const { url } = await serve(['--initial-pool-size', '0']);
    await call(url, 'POST', '/api/v1/templates', { hash: 'h4' });
    await call(url, 'PUT', '/api/v1/templates/h4');
    const { body } = await call(url, 'GET', '/api/v1/templates/h4/tests');
    const { id, database } = body as { id: number; database: { config: IntegreSQLDatabaseConfig } };

    const before = await servedDatabases();
    expectJsonError(await call(url, 'POST', '/api/v1/templates/h4/tests/abc/unlock'), 400, /invalid test database ID/);
    expectJsonError(await call(url, 'POST', '/api/v1/templates/h4/tests/-1/recreate'), 400, /invalid test database ID/);
    expectJsonError(await call(url, 'POST', '/api/v1/templates/h4/tests/999/unlock'), 404, /test database not found/);
    expectJsonError(await call(url, 'DELETE', '/api/v1/templates/h4/tests/999'), 404, /test database not found/);
    expectJsonError(await call(url, 'POST', '/api/v1/templates/nope/tests/0/recreate'), 404, /template not found/);
    expect(await servedDatabases()).toEqual(before);

    await withDatabase(database.config, async (db) => {
      await db.query('CREATE TABLE written (x int)');
      expectJsonError(await call(url, 'POST', `/api/v1/templates/h4/tests/${id}/unlock`), 423, /in use/);
      expectJsonError(await call(url, 'POST', `/api/v1/templates/h4/tests/${id}/recreate`), 423, /in use/);
    });
    expect((await call(url, 'POST', `/api/v1/templates/h4/tests/${id}/recreate`)).status).toBe(204);
    await expect.poll(async () => (await sql(database.config.database, "SELECT 1 FROM pg_class WHERE relname = 'written'")).rowCount).toBe(0);
    // Recreated, it is back in the pool under a new id.
    await expect.poll(async () => (await call(url, 'POST', `/api/v1/templates/h4/tests/${id}/unlock`)).status).toBe(404);
    const next = (await call(url, 'GET', '/api/v1/templates/h4/tests')).body as { id: number };
    expect((await call(url, 'POST', `/api/v1/templates/h4/tests/${next.id}/unlock`)).status).toBe(204);
    const last = (await call(url, 'GET', '/api/v1/templates/h4/tests')).body as { id: number };
    expect((await call(url, 'DELETE', `/api/v1/templates/h4/tests/${last.id}`)).status).toBe(204);
  });

  test('errors are JSON everywhere: unknown routes 404, wrong methods 405; the admin DELETE drops every template and test database', async () => {
    const { url } = await serve(['--initial-pool-size', '2']);
    expectJsonError(await call(url, 'GET', '/api/v1/nothing'), 404, /Not Found/);
    expectJsonError(await call(url, 'PATCH', '/api/v1/templates'), 405, /Method Not Allowed/);
    expect(await rawGet(url, '//[')).toMatchObject({ status: 400, body: { message: expect.stringMatching(/not a valid URL path/) } });
    expect(await call(url, 'GET', '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    for (const hash of ['a', 'b']) {
      await call(url, 'POST', '/api/v1/templates', { hash });
      await call(url, 'PUT', `/api/v1/templates/${hash}`);
      expect((await call(url, 'GET', `/api/v1/templates/${hash}/tests`)).status).toBe(200);
    }
    expect((await servedDatabases()).length).toBeGreaterThanOrEqual(4);
    expect((await call(url, 'DELETE', '/api/v1/admin/templates')).status).toBe(204);
    expect(await servedDatabases()).toEqual([]);
    expectJsonError(await call(url, 'GET', '/api/v1/templates/a/tests'), 404, /template not found/);
  });

  test('at the maximum pool size, the oldest database handed out is recreated for the next request, never handed out dirty', async () => {
    // Long enough for this test to write into both before either may be recycled.
    const { url } = await serve(['--initial-pool-size', '1', '--max-pool-size', '2'], { INTEGRESQL_TEST_DB_MINIMAL_LIFETIME_MS: '1500' });
    const api = new IntegreSQLApiClient({ url });
    const { database } = await api.initializeTemplate('h5');
    await POSTS(database.config);
    await api.finalizeTemplate('h5');
    const first = await api.getTestDatabase('h5');
    const second = await api.getTestDatabase('h5');
    for (const taken of [first, second]) await withDatabase(taken.database.config, (db) => db.query("INSERT INTO users VALUES ('dirty')"));
    const third = await api.getTestDatabase('h5');
    const recycled = [first, second].find((taken) => taken.database.config.database === third.database.config.database);
    expect(recycled).toBeDefined();
    expect((await sql<{ name: string }>(third.database.config.database, 'SELECT name FROM users')).rows).toEqual([{ name: 'foo' }]);
    // Its first holder returning it late reaches nothing: it is the third's now.
    expectJsonError(await call(url, 'POST', `/api/v1/templates/h5/tests/${recycled!.id}/unlock`), 404, /test database not found/);
    expect((await call(url, 'POST', `/api/v1/templates/h5/tests/${third.id}/unlock`)).status).toBe(204);
  });

  test('copies that keep failing fail the waiting request with a JSON 500, and are retried with a growing pause, not in a loop', async () => {
    // One copy always wanted ready: without a pause, a failing copy would be retried at once, forever.
    const serving = await serve(['--initial-pool-size', '1', '--max-pool-size', '1'], { INTEGRESQL_TEST_DB_MINIMAL_LIFETIME_MS: '1000' });
    const api = new IntegreSQLApiClient({ url: serving.url });
    const { database } = await api.initializeTemplate('h6');
    await api.finalizeTemplate('h6');
    expect((await call(serving.url, 'GET', '/api/v1/templates/h6/tests')).status).toBe(200);
    await sql('postgres', `DROP DATABASE ${database.config.database} WITH (FORCE)`);
    expectJsonError(await call(serving.url, 'GET', '/api/v1/templates/h6/tests'), 500, /copying template h6 failed: .*does not exist/);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const reported = serving.stderr().match(/does not exist/g) ?? [];
    expect(reported.length).toBeGreaterThanOrEqual(3);
    expect(reported.length).toBeLessThan(8);
  });
});

describe('dbfast serve: binding, restarts, shutdown', () => {
  test('another address than loopback needs DBFAST_SERVE_TOKEN; requests then need it as a bearer token (not /healthz)', async () => {
    const refused = await serveExit(root, env, ['--host', '0.0.0.0']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/needs a token.*\n.*DBFAST_SERVE_TOKEN/);

    const { url } = await serve(['--host', '0.0.0.0'], { DBFAST_SERVE_TOKEN: 's3cret-token' });
    const local = url.replace('0.0.0.0', '127.0.0.1');
    expectJsonError(await call(local, 'POST', '/api/v1/templates', { hash: 't' }), 401, /bearer token/);
    expectJsonError(await call(local, 'POST', '/api/v1/templates', { hash: 't' }, { Authorization: 'Bearer wrong' }), 401, /bearer token/);
    expect(await servedDatabases()).toEqual([]);
    expect((await call(local, 'GET', '/healthz')).status).toBe(200);
    expect((await call(local, 'POST', '/api/v1/templates', { hash: 't' }, { Authorization: 'Bearer s3cret-token' })).status).toBe(200);
  });

  test('killed mid-request, a restart takes over finalised templates, recreates what was handed out, drops what nobody can finish; dbfast clean --serve finds the rest', async () => {
    const first = await serve(['--initial-pool-size', '1', '--max-pool-size', '1'], { INTEGRESQL_TEST_DB_MINIMAL_LIFETIME_MS: '60000' });
    const api = new IntegreSQLApiClient({ url: first.url });
    await POSTS((await api.initializeTemplate('kept')).database.config);
    await api.finalizeTemplate('kept');
    const dirty = await api.getTestDatabase('kept');
    await withDatabase(dirty.database.config, (db) => db.query("INSERT INTO users VALUES ('dirty')"));
    const unfinished = (await api.initializeTemplate('unfinished')).database.config.database;
    const waiting = call(first.url, 'GET', '/api/v1/templates/unfinished/tests').catch((error: Error) => error);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await first.stop('SIGKILL');
    expect(await waiting).toBeInstanceOf(Error);
    running.delete(first);

    // A copy handed out before a restart counts as handed out long ago.
    const second = await serve(['--initial-pool-size', '1', '--max-pool-size', '1'], { INTEGRESQL_TEST_DB_MINIMAL_LIFETIME_MS: '60000' });
    const again = new IntegreSQLApiClient({ url: second.url });
    expectJsonError(await call(second.url, 'GET', '/api/v1/templates/unfinished/tests'), 404, /template not found/);
    expect(await servedDatabases()).not.toContain(unfinished);
    const taken = await again.getTestDatabase('kept');
    // The only database of the pool was handed out before the kill: handed out again only recreated.
    expect(taken.database.config.database).toBe(dirty.database.config.database);
    expect(taken.id).not.toBe(dirty.id);
    expect((await sql<{ name: string }>(taken.database.config.database, 'SELECT name FROM users')).rows).toEqual([{ name: 'foo' }]);

    // A second serve on the same PostgreSQL would hand out the same databases: refused.
    const twice = await serveExit(root, env);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/another dbfast serve manages the test databases/);
    // Advisory locks belong to a database: one connected to another database of the server is refused too.
    await sql('postgres', 'DROP DATABASE IF EXISTS other_maintenance');
    await sql('postgres', 'CREATE DATABASE other_maintenance');
    const elsewhere = await serveExit(root, { DBFAST_DATABASE_URL: testServerUrl(server.port, 'other_maintenance') });
    expect(elsewhere.code, elsewhere.stderr).toBe(1);
    expect(elsewhere.stderr).toMatch(/another dbfast serve manages the test databases/);
    expect((await runCli(['clean', '--serve'], { cwd: root, env: { DBFAST_DATABASE_URL: testServerUrl(server.port, 'other_maintenance') } })).code).toBe(1);
    const busy = await runCli(['clean', '--serve'], { cwd: root, env });
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(/dbfast serve is running/);

    await second.stop('SIGKILL');
    running.delete(second);
    expect((await servedDatabases()).length).toBeGreaterThan(0);
    const cleaned = await runCli(['clean', '--serve'], { cwd: root, env });
    expect(cleaned.code, cleaned.stderr).toBe(0);
    expect(cleaned.stderr).toMatch(/dropped dbfast_serve_/);
    expect(await servedDatabases()).toEqual([]);
  });

  test('SIGTERM: waiting requests get a JSON 503, copies under way finish, the process exits 0 leaving only marked databases', async () => {
    const serving = await serve(['--initial-pool-size', '4']);
    const api = new IntegreSQLApiClient({ url: serving.url });
    await POSTS((await api.initializeTemplate('s')).database.config);
    await api.initializeTemplate('waits');
    const waiting = call(serving.url, 'GET', '/api/v1/templates/waits/tests');
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Finalising starts 4 copies in the background; stop while they are being made.
    await api.finalizeTemplate('s');
    expect(await serving.stop('SIGTERM')).toBe(0);
    running.delete(serving);
    expectJsonError(await waiting, 503, /shutting down|cancelled/);
    const { rows } = await sql<{ datname: string; comment: string | null }>(
      'postgres',
      "SELECT datname, shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname LIKE 'dbfast\\_serve\\_%'",
    );
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(row.comment, row.datname).toMatch(/^\{"dbfast":\{"kind":"serve-/);
  });
});

describe('dbfast serve: dbfast-native endpoints', () => {
  test('POST /api/dbfast/v1/seed clones the repository template; DELETE /api/dbfast/v1/databases/:name drops it; bad input is a JSON 4xx', async () => {
    const { url } = await serve();
    const seeded = await call(url, 'POST', '/api/dbfast/v1/seed', {});
    expect(seeded.status).toBe(200);
    const { database, url: databaseUrl, template } = seeded.body as { database: string; url: string; template: string };
    expect(template).toBe('served_template');
    expect(databaseUrl).toBe(`postgresql://postgres@127.0.0.1:${server.port}/${database}`);
    expect((await sql<{ title: string }>(database, 'SELECT title FROM posts')).rows).toEqual([{ title: 'hello' }]);

    expectJsonError(await call(url, 'POST', '/api/dbfast/v1/seed', { env: 'nope' }), 400, /nope/);
    expectJsonError(await call(url, 'POST', '/api/dbfast/v1/seed', { env: 3 }), 400, /"env"/);
    expectJsonError(await call(url, 'DELETE', '/api/dbfast/v1/databases/postgres'), 404, /no clone named "postgres"/);
    expect((await call(url, 'DELETE', `/api/dbfast/v1/databases/${database}`)).status).toBe(204);
    expect((await sql('postgres', `SELECT 1 FROM pg_database WHERE datname = '${database}'`)).rowCount).toBe(0);
    expectJsonError(await call(url, 'DELETE', `/api/dbfast/v1/databases/${database}`), 404, /no clone named/);
    const cleaned = await runCli(['clean', '--all'], { cwd: root, env });
    expect(cleaned.code, cleaned.stderr).toBe(0);
  });
});
