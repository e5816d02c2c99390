import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DbfastError } from '../../../src/core/errors.js';
import { executeFiles, type SqlSession } from '../../../src/core/sql/execute.js';
import { refusedInTransaction, scanStatements } from '../../../src/core/sql/transactional.js';

const firstNonTransactional = async (path: string) => (await scanStatements(path)).nonTransactional;
import { freshDatabase, testClientConfig } from '../../helpers/database.js';
import { tempRepo } from '../../helpers/repo.js';

let db: Awaited<ReturnType<typeof freshDatabase>>;
beforeEach(async () => {
  db = await freshDatabase();
});
afterEach(async () => {
  await db.drop();
});

interface RunOptions {
  /** Collects what the executor reported as warnings, located. */
  warnings?: string[];
  /** The session to run on, when not `db.session`. */
  session?: SqlSession;
}

/** Runs the given files (in key order) inside the transaction the caller opened, as a deploy does. */
async function runInTransaction(files: Record<string, string>, options: RunOptions = {}) {
  const root = await tempRepo(files);
  const paths = Object.keys(files).map((relativePath) => ({ relativePath, absolutePath: join(root, relativePath) }));
  return executeFiles(options.session ?? db.session, paths, {
    repositoryRoot: root,
    inTransaction: true,
    onWarning: (warning) => options.warnings?.push(warning.located),
  });
}

async function rows(sql: string, client: pg.Client = db.client) {
  return (await client.query(sql)).rows;
}

/** Which of `names` exist as relations, as the connection sees them now. */
async function existing(names: string[], client: pg.Client = db.client): Promise<string[]> {
  const found = await client.query<{ name: string }>('SELECT name FROM unnest($1::text[]) AS name WHERE to_regclass(name) IS NOT NULL ORDER BY name', [names]);
  return found.rows.map((row) => row.name);
}

async function failure(promise: Promise<unknown>): Promise<DbfastError> {
  try {
    await promise;
  } catch (error) {
    return error as DbfastError;
  }
  throw new Error('expected the run to fail');
}

describe("executor: inside the caller's transaction", () => {
  it("turns a file's BEGIN ... COMMIT into a savepoint: nothing is committed, the caller's transaction stays open", async () => {
    await db.client.query('BEGIN');
    const stats = await runInTransaction({ 'a.sql': 'BEGIN;\nCREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\nCOMMIT;\n' });
    expect(stats).toMatchObject({ files: 1, statements: 4 });
    expect(db.client.getTransactionStatus()).toBe('T');
    expect(await rows('SELECT id FROM t')).toEqual([{ id: 1 }]);
    await db.client.query('ROLLBACK');
    expect(await existing(['t'])).toEqual([]);
  });

  it('reads a COMMIT or ROLLBACK a variable stands for from the text sent: the caller\'s transaction stays open', async () => {
    await db.client.query('BEGIN');
    await runInTransaction({ 'a.sql': "\\set b BEGIN\n\\set c COMMIT\n\\set r 'ROLLBACK'\nCREATE TABLE kept (id int);\n:b;\nCREATE TABLE undone (id int);\n:r;\n:c;\n" });
    expect(db.client.getTransactionStatus()).toBe('T');
    expect(await existing(['kept', 'undone'])).toEqual(['kept']);
    await db.client.query('ROLLBACK');
    expect(await existing(['kept'])).toEqual([]);
  });

  it('refuses a COMMIT built by \\gexec, which would end the caller\'s transaction', async () => {
    await db.client.query('BEGIN');
    const error = await failure(runInTransaction({ 'a.sql': "CREATE TABLE t (id int);\nSELECT 'COMMIT' \\gexec\n" }));
    expect(error).toMatchObject({ code: 'SQL_META_COMMAND', file: 'a.sql', line: 2, message: "\\gexec built COMMIT, which would end the deploy's transaction" });
    expect(db.client.getTransactionStatus()).toBe('T');
    await db.client.query('ROLLBACK');
    expect(await existing(['t'])).toEqual([]);
  });

  it('reads START TRANSACTION, END, BEGIN WORK, COMMIT WORK and ABORT the same way', async () => {
    await db.client.query('BEGIN');
    await runInTransaction({
      'a.sql': 'START TRANSACTION;\nCREATE TABLE a (id int);\nEND;\n',
      'b.sql': 'BEGIN WORK;\nCREATE TABLE b (id int);\nCOMMIT WORK;\n',
      'c.sql': 'START TRANSACTION ISOLATION LEVEL READ COMMITTED;\nCREATE TABLE c (id int);\nCOMMIT;\n',
      'd.sql': 'CREATE TABLE d_kept (id int);\nBEGIN;\nCREATE TABLE d_aborted (id int);\nABORT;\n',
    });
    expect(db.client.getTransactionStatus()).toBe('T');
    expect(await existing(['a', 'b', 'c', 'd_kept', 'd_aborted'])).toEqual(['a', 'b', 'c', 'd_kept']);
    await db.client.query('ROLLBACK');
    expect(await existing(['a', 'b', 'c', 'd_kept', 'd_aborted'])).toEqual([]);
  });

  it("undoes only the file's own transaction on its ROLLBACK", async () => {
    await db.client.query('BEGIN');
    await runInTransaction({
      '1.sql': 'CREATE TABLE earlier (id int);\nINSERT INTO earlier VALUES (1);\n',
      '2.sql': [
        'CREATE TABLE before (id int);',
        'INSERT INTO before VALUES (1);',
        'BEGIN;',
        'CREATE TABLE a (id int);',
        'INSERT INTO before VALUES (2);',
        'INSERT INTO earlier VALUES (2);',
        'ROLLBACK;',
        'CREATE TABLE after (id int);',
        '',
      ].join('\n'),
    });
    expect(db.client.getTransactionStatus()).toBe('T');
    expect(await existing(['earlier', 'before', 'a', 'after'])).toEqual(['after', 'before', 'earlier']);
    expect(await rows('SELECT id FROM before')).toEqual([{ id: 1 }]);
    expect(await rows('SELECT id FROM earlier')).toEqual([{ id: 1 }]);
    await db.client.query('ROLLBACK');
    expect(await existing(['earlier', 'before', 'after'])).toEqual([]);
  });

  it('refuses a file that ends inside its own BEGIN, and leaves the caller a transaction it can roll back', async () => {
    await db.client.query('BEGIN');
    const error = await failure(
      runInTransaction({
        '1.sql': 'CREATE TABLE first (id int);\n',
        '2.sql': 'CREATE TABLE outer_t (id int);\nBEGIN;\nCREATE TABLE t (id int);\n',
      }),
    );
    expect(error).toMatchObject({ code: 'SQL_FAILED', file: '2.sql', message: 'file ends inside a transaction block (BEGIN without COMMIT)' });
    // The file's unfinished transaction is undone; the caller's is still open, not aborted.
    expect(db.client.getTransactionStatus()).toBe('T');
    expect(await existing(['first', 'outer_t', 't'])).toEqual(['first', 'outer_t']);
    await db.client.query('ROLLBACK');
    expect(db.client.getTransactionStatus()).toBe('I');
    expect(await existing(['first', 'outer_t', 't'])).toEqual([]);
    expect(await rows('SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });

  it('refuses COMMIT AND CHAIN at its file and line, committing nothing', async () => {
    await db.client.query('BEGIN');
    const error = await failure(
      runInTransaction({
        '1.sql': 'CREATE TABLE t (id int);\n',
        '2.sql': 'INSERT INTO t VALUES (1);\n\nCOMMIT AND CHAIN;\nCREATE TABLE never (id int);\n',
      }),
    );
    expect(error).toMatchObject({ code: 'SQL_FAILED', file: '2.sql', line: 3, column: 1 });
    expect(error.message).toBe("COMMIT AND CHAIN cannot run in a deploy's transaction");
    expect(db.client.getTransactionStatus()).toBe('T');
    expect(await rows('SELECT id FROM t')).toEqual([{ id: 1 }]);
    expect(await existing(['never'])).toEqual([]);
    await db.client.query('ROLLBACK');
    expect(await existing(['t'])).toEqual([]);
  });

  it('refuses ROLLBACK AND CHAIN inside the file transaction and PREPARE TRANSACTION, committing nothing', async () => {
    await db.client.query('BEGIN');
    const chain = await failure(runInTransaction({ 'a.sql': 'CREATE TABLE t (id int);\nBEGIN;\nINSERT INTO t VALUES (1);\n  ROLLBACK AND CHAIN;\n' }));
    expect(chain).toMatchObject({ code: 'SQL_FAILED', file: 'a.sql', line: 4, column: 3 });
    expect(chain.message).toBe("ROLLBACK AND CHAIN cannot run in a deploy's transaction");
    await db.client.query('ROLLBACK');
    expect(await existing(['t'])).toEqual([]);

    await db.client.query('BEGIN');
    const prepare = await failure(runInTransaction({ 'p.sql': "CREATE TABLE t (id int);\nBEGIN;\nINSERT INTO t VALUES (1);\n  PREPARE TRANSACTION 'x';\n" }));
    expect(prepare).toMatchObject({ code: 'SQL_FAILED', file: 'p.sql', line: 4, column: 3 });
    expect(prepare.message).toBe("PREPARE TRANSACTION cannot run in a deploy's transaction");
    expect(db.client.getTransactionStatus()).toBe('T');
    expect(await existing(['t'])).toEqual(['t']);
    await db.client.query('ROLLBACK');
    expect(await existing(['t'])).toEqual([]);
    expect(await rows('SELECT gid FROM pg_prepared_xacts')).toEqual([]);
  });

  it("resets search_path, role and temp tables between files without leaving the caller's transaction", async () => {
    const role = `dbfast_r_${randomBytes(4).toString('hex')}`;
    await db.client.query('BEGIN');
    await runInTransaction({
      '1.sql': [
        'CREATE SCHEMA other;',
        `CREATE ROLE ${role};`,
        `GRANT ALL ON SCHEMA public, other TO ${role};`,
        'SET search_path = other;',
        'CREATE TEMP TABLE scratch (id int);',
        `SET ROLE ${role};`,
        // Proves the settings took hold in file 1.
        'CREATE TABLE public.file1 AS SELECT current_user::text AS role, current_setting($$search_path$$) AS search_path;',
        '',
      ].join('\n'),
      // Fails if file 1's temp table is still there.
      '2.sql': [
        'CREATE TEMP TABLE scratch (id int);',
        'CREATE TABLE public.file2 AS SELECT current_user::text AS role, current_setting($$search_path$$) AS search_path;',
        'CREATE TABLE placed (id int);',
        '',
      ].join('\n'),
    });
    expect(db.client.getTransactionStatus()).toBe('T');
    expect(await rows('SELECT role, search_path FROM public.file1')).toEqual([{ role, search_path: 'other' }]);
    expect(await rows('SELECT role, search_path FROM public.file2')).toEqual([{ role: 'postgres', search_path: '"$user", public' }]);
    expect(await rows(`SELECT schemaname FROM pg_tables WHERE tablename = 'placed'`)).toEqual([{ schemaname: 'public' }]);
    await db.client.query('ROLLBACK');
    expect(await existing(['public.file1', 'public.file2', 'public.placed'])).toEqual([]);
    expect(await rows(`SELECT rolname FROM pg_roles WHERE rolname = '${role}'`)).toEqual([]);
  });

  it('keeps a setting given at connect time through the reset between files', async () => {
    const client = new pg.Client({ ...testClientConfig(db.name), options: '-c lock_timeout=1234' });
    await client.connect();
    const session: SqlSession = {
      client,
      async reconnect() {
        throw new Error('no reconnect expected inside a transaction');
      },
    };
    try {
      await client.query('BEGIN');
      await runInTransaction(
        {
          '1.sql': "SET lock_timeout = 0;\nCREATE TABLE seen AS SELECT 1 AS file, current_setting('lock_timeout') AS lock_timeout;\n",
          '2.sql': "SELECT set_config('dbfast_test.seen', current_setting('lock_timeout'), false);\n",
        },
        { session },
      );
      expect(client.getTransactionStatus()).toBe('T');
      expect(await rows('SELECT file, lock_timeout FROM seen', client)).toEqual([{ file: 1, lock_timeout: '0' }]);
      expect(await rows(`SELECT current_setting('dbfast_test.seen') AS seen`, client)).toEqual([{ seen: '1234ms' }]);
      await client.query('ROLLBACK');
    } finally {
      await client.end();
    }
  });

  it('throws at a failing statement even with ON_ERROR_STOP off', async () => {
    const warnings: string[] = [];
    await db.client.query('BEGIN');
    const error = await failure(
      runInTransaction({ 'a.sql': '\\set ON_ERROR_STOP off\nCREATE TABLE t (id int);\nSELECT 1/0;\nCREATE TABLE after (id int);\n' }, { warnings }),
    );
    expect(error).toMatchObject({ code: 'SQL_FAILED', file: 'a.sql', line: 3, message: 'division by zero', sqlState: '22012' });
    expect(warnings).toEqual([]);
    await db.client.query('ROLLBACK');
    expect(await existing(['t', 'after'])).toEqual([]);
  });

  it("fails with the server's error, located, on a statement PostgreSQL refuses in a transaction block", async () => {
    await db.client.query('BEGIN');
    const error = await failure(
      runInTransaction({
        '1.sql': 'CREATE TABLE t (id int);\n',
        '2.sql': 'SELECT 1;\n\n  CREATE INDEX CONCURRENTLY t_id ON t (id);\n',
      }),
    );
    expect(error).toMatchObject({
      code: 'SQL_FAILED',
      sqlState: '25001',
      file: '2.sql',
      line: 3,
      column: 3,
      message: 'CREATE INDEX CONCURRENTLY cannot run inside a transaction block',
    });
    await db.client.query('ROLLBACK');
    expect(await existing(['t'])).toEqual([]);
  });
});

describe('refusedInTransaction', () => {
  it.each([
    [['create', 'index', 'concurrently']],
    [['vacuum']],
    [['reindex', 'database']],
    [['reindex', 'schema']],
    [['cluster']],
    [['cluster', 'verbose']],
    [['create', 'database']],
    [['alter', 'system']],
    [['commit', 'prepared']],
    [['discard', 'all']],
    [['drop', 'index', 'concurrently']],
  ])('refuses %j', (words) => {
    expect(refusedInTransaction(words)).toBe(true);
  });

  it.each([
    [['refresh', 'materialized', 'view', 'concurrently']],
    [['reindex', 'table']],
    [['cluster', 't']],
    [['create', 'table']],
    [['commit']],
    [['begin']],
  ])('allows %j', (words) => {
    expect(refusedInTransaction(words)).toBe(false);
  });
});

describe('scanStatements: the first statement that cannot run in a transaction', () => {
  it('finds CREATE INDEX CONCURRENTLY and where it is', async () => {
    const root = await tempRepo({ 'a.sql': 'CREATE TABLE t (id int);\n\n  create index concurrently i on t (id);\n' });
    expect(await firstNonTransactional(join(root, 'a.sql'))).toEqual({
      path: join(root, 'a.sql'),
      location: { line: 3, column: 3 },
      statement: 'create index concurrently',
    });
  });

  it('finds one in a file included with \\ir, naming the included file', async () => {
    const root = await tempRepo({ 'main.sql': 'SELECT 1;\n\\ir sub/x.sql\nSELECT 2;\n', 'sub/x.sql': 'SELECT 3;\nVACUUM;\n' });
    expect(await firstNonTransactional(join(root, 'main.sql'))).toEqual({
      path: join(root, 'sub', 'x.sql'),
      location: { line: 2, column: 1 },
      statement: 'vacuum',
    });
  });

  it('returns null for a file without one', async () => {
    const root = await tempRepo({ 'a.sql': 'CREATE TABLE t (id int);\nBEGIN;\nREFRESH MATERIALIZED VIEW CONCURRENTLY mv;\nCOMMIT;\n' });
    expect(await firstNonTransactional(join(root, 'a.sql'))).toBeNull();
  });

  it('ignores words in comments, strings and dollar-quoted bodies', async () => {
    const quoted = "-- VACUUM;\n/* VACUUM; */\nCREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ VACUUM $$;\nSELECT 'VACUUM';\n";
    const root = await tempRepo({ 'a.sql': quoted, 'b.sql': `${quoted}VACUUM;\n` });
    expect(await firstNonTransactional(join(root, 'a.sql'))).toBeNull();
    // The same text followed by a real one: found at its line, not earlier.
    expect(await firstNonTransactional(join(root, 'b.sql'))).toMatchObject({ location: { line: 5, column: 1 }, statement: 'vacuum' });
  });

  it('stops at an include cycle', async () => {
    const root = await tempRepo({ 'a.sql': '\\ir b.sql\n', 'b.sql': '\\ir a.sql\n', 'c.sql': '\\ir d.sql\nVACUUM;\n', 'd.sql': '\\ir c.sql\n' });
    expect(await firstNonTransactional(join(root, 'a.sql'))).toBeNull();
    expect(await firstNonTransactional(join(root, 'b.sql'))).toBeNull();
    expect(await firstNonTransactional(join(root, 'c.sql'))).toEqual({ path: join(root, 'c.sql'), location: { line: 2, column: 1 }, statement: 'vacuum' });
  });
});
