import { createHash } from 'node:crypto';
import { chown, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DbfastError } from '../../../src/core/errors.js';
import { executeFiles } from '../../../src/core/sql/execute.js';
import { freshDatabase } from '../../helpers/database.js';
import { tempRepo } from '../../helpers/repo.js';

let db: Awaited<ReturnType<typeof freshDatabase>>;
beforeEach(async () => {
  db = await freshDatabase();
});
afterEach(async () => {
  await db.drop();
});

interface RunOptions {
  /** Collects \echo output. */
  echo?: string[];
  /** Collects \warn output. */
  warns?: string[];
  /** Collects what failed while ON_ERROR_STOP was off, located. */
  warnings?: string[];
  /** The files to run, when not all of them. */
  only?: string[];
}

/** Runs the given files (in key order) and returns the execution stats. */
async function run(files: Record<string, string | Buffer>, options: RunOptions = {}) {
  const root = await tempRepo(files);
  const paths = (options.only ?? Object.keys(files)).map((relativePath) => ({
    relativePath,
    absolutePath: join(root, relativePath),
  }));
  return executeFiles(db.session, paths, {
    repositoryRoot: root,
    onEcho: (text) => options.echo?.push(text),
    onWarn: (text) => options.warns?.push(text),
    onWarning: (warning) => options.warnings?.push(warning.located),
  });
}

async function rows(sql: string) {
  return (await db.client.query(sql)).rows;
}

describe('executor: statements', () => {
  it('runs a mix of statements and counts them', async () => {
    const stats = await run({
      'a.sql': `
        CREATE TABLE t (id int primary key, note text); -- trailing comment
        /* block /* nested */ comment; */
        INSERT INTO t VALUES (1, 'it''s; fine'), (2, E'back\\'slash; \\n');
        INSERT INTO t VALUES (3, $$dollar; 'quoted'$$), (4, $tag$ $$ inner ; $$ $tag$);
        CREATE TABLE "semi;colon" ("a;b" int);
        INSERT INTO "semi;colon" VALUES (5)`,
    });
    expect(stats).toEqual({ files: 1, statements: 5, rowsCopied: 0, failedStatements: 0, includedFiles: [] });
    expect(await rows('SELECT id, note FROM t ORDER BY id')).toEqual([
      { id: 1, note: "it's; fine" },
      { id: 2, note: "back'slash; \n" },
      { id: 3, note: "dollar; 'quoted'" },
      { id: 4, note: ' $$ inner ; $$ ' },
    ]);
    expect(await rows('SELECT "a;b" FROM "semi;colon"')).toEqual([{ 'a;b': 5 }]);
  });

  it('runs DO blocks and plpgsql functions with semicolons in their bodies', async () => {
    await run({
      'a.sql': `
        CREATE TABLE log (msg text);
        DO $$ BEGIN INSERT INTO log VALUES ('from do'); END $$;
        CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE plpgsql AS $body$
        DECLARE r int;
        BEGIN r := a + b; RETURN r; END;
        $body$;
        INSERT INTO log SELECT add(2, 3)::text;`,
    });
    expect(await rows('SELECT msg FROM log ORDER BY msg')).toEqual([{ msg: '5' }, { msg: 'from do' }]);
  });

  it('reads dollar-quote tags with letters of any script and digits, as PostgreSQL does', async () => {
    const stats = await run({
      'a.sql': `
        CREATE FUNCTION média(a int, b int) RETURNS int LANGUAGE plpgsql AS $função$
        BEGIN RETURN (a + b) / 2; END;
        $função$;
        CREATE TABLE notes (body text);
        INSERT INTO notes VALUES ($日本$it's; $Tag$ not the end$日本$);
        INSERT INTO notes SELECT $t_2$;$t_1$;$t_2$;`,
    });
    expect(stats.statements).toBe(4);
    expect(await rows('SELECT média(2, 4) AS m')).toEqual([{ m: 3 }]);
    expect(await rows('SELECT body FROM notes ORDER BY body')).toEqual([{ body: ';$t_1$;' }, { body: "it's; $Tag$ not the end" }]);
  });

  it('runs SQL-standard function bodies (BEGIN ATOMIC ... END) with CASE inside', async () => {
    await run({
      'a.sql': `
        CREATE TABLE t (x int);
        CREATE OR REPLACE FUNCTION sign_of(n int) RETURNS text LANGUAGE sql
        BEGIN ATOMIC
          SELECT CASE WHEN n < 0 THEN 'neg' ELSE 'pos' END;
        END;
        CREATE PROCEDURE put(n int) LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (n); INSERT INTO t VALUES (n + 1); END;
        CALL put(10);`,
    });
    expect(await rows(`SELECT sign_of(-1) AS s`)).toEqual([{ s: 'neg' }]);
    expect(await rows('SELECT x FROM t ORDER BY x')).toEqual([{ x: 10 }, { x: 11 }]);
  });

  it('keeps semicolons inside parentheses within one statement', async () => {
    await run({
      'a.sql': `
        CREATE TABLE v (id int);
        CREATE TABLE w (id int);
        CREATE RULE r AS ON INSERT TO v DO INSTEAD (INSERT INTO w VALUES (NEW.id); INSERT INTO w VALUES (NEW.id + 1));
        INSERT INTO v VALUES (1);`,
    });
    expect(await rows('SELECT id FROM w ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it('sends a rule whose actions hold parentheses of their own as one statement, also one by one with ON_ERROR_STOP off', async () => {
    const warnings: string[] = [];
    const stats = await run(
      {
        'a.sql': `\\unset ON_ERROR_STOP
        CREATE TABLE counter (n int);
        CREATE TABLE seen (n int);
        CREATE VIEW next_n AS SELECT 0 AS n;
        CREATE RULE bump AS ON UPDATE TO next_n DO INSTEAD (INSERT INTO counter VALUES ((SELECT coalesce(max(n), 0) + 1 FROM counter)); INSERT INTO seen SELECT max(n) FROM counter);
        UPDATE next_n SET n = 1;
        UPDATE next_n SET n = 1;`,
      },
      { warnings },
    );
    expect(warnings).toEqual([]);
    expect(stats).toMatchObject({ statements: 6, failedStatements: 0 });
    expect(await rows('SELECT n FROM counter ORDER BY n')).toEqual([{ n: 1 }, { n: 2 }]);
    expect(await rows('SELECT n FROM seen ORDER BY n')).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it('runs statements that cannot run inside a transaction block', async () => {
    await run({
      'a.sql': `
        CREATE TABLE t (id int);
        INSERT INTO t SELECT generate_series(1, 100);
        CREATE INDEX CONCURRENTLY t_id ON t (id);
        VACUUM ANALYZE t;
        CREATE TYPE mood AS ENUM ('sad');
        ALTER TYPE mood ADD VALUE 'happy';
        CREATE TABLE m (v mood DEFAULT 'happy');
        INSERT INTO m DEFAULT VALUES;`,
    });
    expect(await rows(`SELECT indexname FROM pg_indexes WHERE tablename = 't'`)).toEqual([{ indexname: 't_id' }]);
    expect(await rows('SELECT v FROM m')).toEqual([{ v: 'happy' }]);
  });

  it('runs CREATE TABLESPACE, moving a database to it and DROP TABLESPACE outside a transaction block', async () => {
    const [{ directory }] = await rows("SELECT current_setting('data_directory') AS directory");
    // The location must be an empty folder the server's own user owns.
    const owner = await stat(directory);
    const location = await mkdtemp(join(tmpdir(), 'dbfast-tablespace-'));
    await chown(location, owner.uid, owner.gid);
    const name = `ts_${db.name}`;
    try {
      await run({
        'a.sql': `CREATE TABLE t (id int);\nCREATE TABLESPACE ${name} LOCATION '${location}';\nCREATE DATABASE ${name};\nALTER DATABASE ${name} SET TABLESPACE ${name};\nDROP DATABASE ${name};\nDROP TABLESPACE ${name};\nINSERT INTO t VALUES (1);\n`,
      });
      expect(await rows(`SELECT count(*)::int AS n FROM pg_tablespace WHERE spcname = '${name}'`)).toEqual([{ n: 0 }]);
      expect(await rows('SELECT id FROM t')).toEqual([{ id: 1 }]);
    } finally {
      await db.client.query(`DROP DATABASE IF EXISTS ${name}`);
      await db.client.query(`DROP TABLESPACE IF EXISTS ${name}`);
      await rm(location, { recursive: true, force: true });
    }
  });

  it('runs explicit transactions', async () => {
    await run({ 'a.sql': 'BEGIN;\nCREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\nCOMMIT;\n' });
    expect(await rows('SELECT id FROM t')).toEqual([{ id: 1 }]);
  });

  it('sends the statements before START TRANSACTION on their own: its ROLLBACK does not undo them', async () => {
    await run({
      'a.sql': 'CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\nSTART TRANSACTION ISOLATION LEVEL REPEATABLE READ;\nINSERT INTO t VALUES (2);\nROLLBACK;\nINSERT INTO t VALUES (3);\n',
    });
    expect(await rows('SELECT id FROM t ORDER BY id')).toEqual([{ id: 1 }, { id: 3 }]);
  });

  it('accepts a UTF-8 BOM and CRLF line endings', async () => {
    const text = '\uFEFFCREATE TABLE t (name text);\r\nINSERT INTO t VALUES (\'caf\u00e9\');\r\n';
    await run({ 'a.sql': Buffer.from(text, 'utf8') });
    expect(await rows('SELECT name FROM t')).toEqual([{ name: 'caf\u00e9' }]);
  });

  it('sends the last statement even without a semicolon', async () => {
    await run({ 'a.sql': 'CREATE TABLE t (id int);\nINSERT INTO t VALUES (7) -- no semicolon' });
    expect(await rows('SELECT id FROM t')).toEqual([{ id: 7 }]);
  });

  it('sends consecutive statements together, in one implicit transaction, and a statement that must run alone by itself', async () => {
    await run({
      'a.sql': [
        'CREATE TABLE xids (n serial, xid xid8);',
        'INSERT INTO xids (xid) VALUES (pg_current_xact_id());',
        // Statements that only look like what must run alone or end a batch.
        'ALTER TABLE xids ADD COLUMN value int;',
        'SET search_path = public;',
        'CREATE INDEX ON xids (n);',
        'DROP INDEX IF EXISTS no_such_index;',
        'ALTER DATABASE :"DBNAME" CONNECTION LIMIT 100;',
        'ALTER TABLE xids SET TABLESPACE pg_default;',
        'DISCARD PLANS;',
        'INSERT INTO xids (xid) VALUES (pg_current_xact_id());',
        'VACUUM xids;',
        'INSERT INTO xids (xid) VALUES (pg_current_xact_id());',
      ].join('\n'),
    });
    const [first, second, third] = (await rows('SELECT xid::text FROM xids ORDER BY n')).map((row) => row.xid);
    expect(second).toBe(first);
    expect(third).not.toBe(second);
  });

  it('keeps its connection from file to file, unless a file changed what a new connection starts with', async () => {
    const recordPid = 'INSERT INTO pids (pid) VALUES (pg_backend_pid());\n';
    await run({
      '1.sql': `CREATE TABLE pids (n serial, pid int);\n${recordPid}ALTER TABLE pids SET (fillfactor = 90);\nSET search_path = public;\nALTER DATABASE :"DBNAME" CONNECTION LIMIT 100;\nRESET ROLE;\n`,
      '2.sql': `${recordPid}ALTER DATABASE :"DBNAME" SET work_mem = '8MB';\n`,
      '3.sql': recordPid,
    });
    const [first, second, third] = (await rows('SELECT pid FROM pids ORDER BY n')).map((row) => row.pid);
    expect(second).toBe(first);
    expect(third).not.toBe(second);
  });

  it('batches many small statements across the batch size limit', async () => {
    const inserts = Array.from({ length: 3000 }, (_, i) => `INSERT INTO t VALUES (${i}, '${'x'.repeat(500)}');`);
    const stats = await run({ 'a.sql': `CREATE TABLE t (id int, pad text);\n${inserts.join('\n')}` });
    expect(stats.statements).toBe(3001);
    expect(await rows('SELECT count(*)::int AS n FROM t')).toEqual([{ n: 3000 }]);
  });
});

describe('executor: COPY FROM stdin', () => {
  it('loads inline data up to \\. exactly as pg_dump writes it', async () => {
    const stats = await run({
      'a.sql': [
        'CREATE TABLE actor (id int, name text, note text);',
        'COPY public.actor (id, name, note) FROM stdin;',
        '1\tPENELOPE\t\\N',
        '2\tNICK\tsemi;colon \\\\ tab\\there',
        '\\.',
        'INSERT INTO actor VALUES (3, \'after\', null);',
        '',
      ].join('\n'),
    });
    expect(stats.rowsCopied).toBe(2);
    expect(await rows('SELECT id, name, note FROM actor ORDER BY id')).toEqual([
      { id: 1, name: 'PENELOPE', note: null },
      { id: 2, name: 'NICK', note: 'semi;colon \\ tab\there' },
      { id: 3, name: 'after', note: null },
    ]);
  });

  it('handles CRLF data and an empty data block', async () => {
    await run({ 'a.sql': 'CREATE TABLE t (id int);\r\nCOPY t FROM stdin;\r\n1\r\n2\r\n\\.\r\nCOPY t FROM stdin;\r\n\\.\r\n' });
    expect(await rows('SELECT count(*)::int AS n FROM t')).toEqual([{ n: 2 }]);
  });

  it('reports an error in the data at its line in the file', async () => {
    const file = 'CREATE TABLE t (id int);\nCOPY t FROM stdin;\n1\n2\nnot-a-number\n\\.\n';
    await expect(run({ 'seed.sql': file })).rejects.toMatchObject({
      code: 'SQL_FAILED',
      file: 'seed.sql',
      line: 5,
      message: expect.stringContaining('invalid input syntax for type integer'),
    });
  });

  it('names where an unterminated COPY block started', async () => {
    await expect(run({ 'a.sql': 'SELECT 1;\nCOPY t FROM stdin;\n1\n2\n' })).rejects.toMatchObject({
      code: 'SQL_SYNTAX',
      file: 'a.sql',
      line: 2,
      column: 1,
      message: expect.stringContaining('COPY data never ends'),
    });
  });
});

describe('executor: psql meta-commands', () => {
  it('includes files relative to the including file with \\i, \\ir and \\include', async () => {
    await run(
      {
        'main.sql': 'CREATE TABLE t (v text);\n\\i parts/one.sql\n\\ir parts/two.sql\n\\include parts/three.sql\n',
        'parts/one.sql': "INSERT INTO t VALUES ('one');\n\\ir nested.sql\n",
        'parts/nested.sql': "INSERT INTO t VALUES ('nested');",
        'parts/two.sql': "INSERT INTO t VALUES ('two');",
        'parts/three.sql': "INSERT INTO t VALUES ('three');",
      },
      { only: ['main.sql'] },
    );
    expect((await rows('SELECT v FROM t')).map((r) => r.v)).toEqual(['one', 'nested', 'two', 'three']);
  });

  it('lists every file it included, nested too, once, with the sha256 of the bytes it read', async () => {
    const files = {
      'main.sql': 'CREATE TABLE t (v text);\n\\i parts/one.inc\n\\i parts/one.inc\n',
      'parts/one.inc': "INSERT INTO t VALUES ('one');\n\\ir deeper/two.inc\n",
      'parts/deeper/two.inc': "\uFEFFINSERT INTO t VALUES ('two');",
    };
    const root = await tempRepo(files);
    const stats = await executeFiles(db.session, [{ relativePath: 'main.sql', absolutePath: join(root, 'main.sql') }], { repositoryRoot: root });
    const read = (path: keyof typeof files) => ({ absolutePath: join(root, path), hash: createHash('sha256').update(files[path]).digest('hex') });
    // Each is listed once read to its end: the nested file first.
    expect(stats.includedFiles).toEqual([read('parts/deeper/two.inc'), read('parts/one.inc')]);
    expect(await rows('SELECT count(*)::int AS n FROM t')).toEqual([{ n: 4 }]);
  });

  it('lists a file whose bytes differ from the hash its caller scanned (edited since)', async () => {
    const root = await tempRepo({ 'a.sql': 'SELECT 1;', 'b.sql': 'SELECT 2;' });
    const scanned = (name: string, content: string) => ({
      relativePath: name,
      absolutePath: join(root, name),
      hash: createHash('sha256').update(content).digest('hex'),
    });
    const stats = await executeFiles(db.session, [scanned('a.sql', 'SELECT 1;'), scanned('b.sql', 'SELECT 1;')], { repositoryRoot: root });
    expect(stats.includedFiles).toEqual([{ absolutePath: join(root, 'b.sql'), hash: createHash('sha256').update('SELECT 2;').digest('hex') }]);
  });

  it('interpolates \\set variables as :var, :\'var\' and :"var", and leaves casts alone', async () => {
    await run({
      'a.sql': [
        "\\set table_name 'my table'",
        '\\set n 42',
        "\\set greeting 'it''s here'",
        'CREATE TABLE :"table_name" (n int, g text, c int);',
        "INSERT INTO :\"table_name\" VALUES (:n, :'greeting', '7'::int);",
        "SELECT ':n' AS not_interpolated_in_quotes;",
      ].join('\n'),
    });
    expect(await rows('SELECT n, g, c FROM "my table"')).toEqual([{ n: 42, g: "it's here", c: 7 }]);
  });

  it('defines the variables psql sets for its connection before it reads a script', async () => {
    const echo: string[] = [];
    await run({ 'a.sql': '\\echo :DBNAME :USER :HOST :PORT :ENCODING :ON_ERROR_STOP\n' }, { echo });
    expect(echo).toEqual([`${db.name} postgres 127.0.0.1 ${db.client.port} UTF8 on`]);
  });

  it('prints \\echo and accepts \\set ON_ERROR_STOP on', async () => {
    const echo: string[] = [];
    await run({ 'a.sql': "\\set ON_ERROR_STOP on\n\\echo hello 'big world'\nSELECT 1;" }, { echo });
    expect(echo).toEqual(['hello big world']);
  });

  it('refuses \\connect with the file and line', async () => {
    await expect(run({ 'a.sql': 'SELECT 1;\n\n\\connect other\n' })).rejects.toMatchObject({
      code: 'SQL_META_COMMAND',
      file: 'a.sql',
      line: 3,
      column: 1,
      message: expect.stringContaining('\\connect is not supported'),
    });
  });

  it('refuses unknown meta-commands', async () => {
    await expect(run({ 'a.sql': '\\gdesc\n' })).rejects.toMatchObject({ code: 'SQL_META_COMMAND', line: 1 });
  });

  it('refuses an include loop', async () => {
    await expect(run({ 'a.sql': '\\ir b.sql', 'b.sql': '\\ir a.sql' }, { only: ['a.sql'] })).rejects.toMatchObject({
      code: 'SQL_META_COMMAND',
      file: 'b.sql',
    });
  });

  it('names the including line when an included file is missing', async () => {
    await expect(run({ 'a.sql': 'SELECT 1;\n\\i missing.sql\n' })).rejects.toMatchObject({
      code: 'FILE_UNREADABLE',
      file: 'a.sql',
      line: 2,
    });
  });
});

/** The located error running `files` throws: `file:line:column: message`, with its code and hint. */
async function failure(files: Record<string, string>, only?: string[]) {
  const error = await run(files, { only }).then(
    () => null,
    (thrown: DbfastError) => thrown,
  );
  if (!error) throw new Error('expected the files to fail');
  return { code: error.code, located: error.located, hint: error.hint };
}

describe('executor: \\restrict and \\unrestrict (pg_dump 15.14+), as psql 15.18', () => {
  it('refuses every other meta-command while restricted, \\if included, and runs statements', async () => {
    const file = "\\restrict k1\nCREATE TABLE t (id int);\n\\if true\n\\endif\n";
    expect(await failure({ 'd.sql': file })).toMatchObject({ code: 'SQL_META_COMMAND', located: 'd.sql:3:1: backslash commands are restricted; only \\unrestrict is allowed' });
    expect(await rows(`SELECT to_regclass('t') IS NOT NULL AS made`)).toEqual([{ made: true }]);
  });

  it('fails on a wrong key, a missing key, or \\unrestrict when not restricted', async () => {
    expect((await failure({ 'a.sql': 'SELECT 1;\n\\restrict k1\n\\unrestrict k2\n' })).located).toBe('a.sql:3:1: \\unrestrict: wrong key');
    expect((await failure({ 'b.sql': '  \\restrict\n' })).located).toBe('b.sql:1:3: \\restrict: missing required argument');
    expect((await failure({ 'c.sql': "\\restrict k\n\\unrestrict ''\n" })).located).toBe('c.sql:2:1: \\unrestrict: missing required argument');
    expect((await failure({ 'e.sql': '\\unrestrict k\n' })).located).toBe('e.sql:1:1: \\unrestrict: not currently in restricted mode');
  });

  it('lifts the restriction with the right key, keeps it across \\i, and ends it with the file', async () => {
    const echo: string[] = [];
    await run(
      {
        '1.sql': '\\restrict k1\n\\unrestrict k1\n\\echo free\n\\ir inc.sql\nSELECT 1;\n\\unrestrict k2\n',
        'inc.sql': '\\restrict k2\n',
        '2.sql': '\\restrict k3\nCREATE TABLE t (id int);\n',
        '3.sql': '\\echo next file\n',
      },
      { echo, only: ['1.sql', '2.sql', '3.sql'] },
    );
    expect(echo).toEqual(['free', 'next file']);
  });
});

describe('executor: \\if, \\elif, \\else, \\endif', () => {
  it('fails as psql does on unbalanced commands, at their file and line', async () => {
    expect((await failure({ 'a.sql': 'SELECT 1;\n\\endif\n' })).located).toBe('a.sql:2:1: \\endif: no matching \\if');
    expect((await failure({ 'b.sql': '\\else\n' })).located).toBe('b.sql:1:1: \\else: no matching \\if');
    expect((await failure({ 'c.sql': '\\elif true\n' })).located).toBe('c.sql:1:1: \\elif: no matching \\if');
    expect((await failure({ 'd.sql': '\\if false\n\\else\n\\else\n\\endif\n' })).located).toBe('d.sql:3:1: \\else: cannot occur after \\else');
    expect((await failure({ 'e.sql': '\\if false\n\\else\n\\elif true\n\\endif\n' })).located).toBe('e.sql:3:1: \\elif: cannot occur after \\else');
  });

  it('fails at the innermost \\if still open at the end of a file, included files each on their own', async () => {
    expect((await failure({ 'a.sql': '\\if true\n  \\if false\n  \\endif\n  \\if true\nSELECT 1;\n' })).located).toBe(
      'a.sql:4:3: reached EOF without finding closing \\endif(s)',
    );
    expect((await failure({ 'a.sql': '\\if true\n\\ir b.sql\n\\endif\n', 'b.sql': '\\endif\n' }, ['a.sql'])).located).toBe('b.sql:1:1: \\endif: no matching \\if');
    expect((await failure({ 'a.sql': '\\ir b.sql\n\\endif\n', 'b.sql': '\\if true\n' }, ['a.sql'])).located).toBe(
      'b.sql:1:1: reached EOF without finding closing \\endif(s)',
    );
  });

  it('refuses a value psql does not read as a boolean (psql prints an error and skips the branch)', async () => {
    const error = await failure({ 'a.sql': '\\set v maybe\nSELECT 1;\n\\if :v\n\\endif\n' });
    expect(error).toMatchObject({ code: 'SQL_META_COMMAND', located: 'a.sql:3:1: unrecognized value "maybe" for "\\if expression": Boolean expected' });
    expect(error.hint).toContain('psql prints this error and skips the branch');
    expect((await failure({ 'b.sql': '\\if false\n\\elif o\n\\endif\n' })).located).toBe('b.sql:2:1: unrecognized value "o" for "\\elif expression": Boolean expected');
  });

  it('skips statements and known meta-commands in skipped branches, but not unknown ones', async () => {
    await run({ 'a.sql': '\\if false\nSELECT 1/0;\n\\connect elsewhere\n\\gexec\n\\elif true\nCREATE TABLE t (id int);\n\\else\nSELECT 1/0;\n\\endif\n' });
    expect(await rows(`SELECT to_regclass('t') IS NOT NULL AS made`)).toEqual([{ made: true }]);
    expect((await failure({ 'b.sql': '\\if false\n  \\bogus\n\\endif\n' })).located).toBe('b.sql:2:3: invalid command \\bogus');
  });

  it('fails at the \\. of a COPY in a skipped branch, where psql reads the data as SQL', async () => {
    const file = 'CREATE TABLE t (id int);\n\\if false\nCOPY t FROM stdin;\n1\n\\.\n\\endif\n';
    expect((await failure({ 'a.sql': file })).located).toBe('a.sql:5:1: invalid command \\.');
  });

  it('refuses an \\if inside a statement', async () => {
    expect((await failure({ 'a.sql': 'SELECT\n\\if true\n1;\n\\endif\n' })).located).toBe('a.sql:2:1: \\if inside a statement is not supported');
  });
});

describe('executor: \\gset and \\g', () => {
  it('sends the statement alone and stores its columns, unsetting NULLs, with a prefix', async () => {
    const echo: string[] = [];
    await run(
      {
        'a.sql':
          "\\set gone x\nSELECT 1 AS one, true AS flag, NULL AS gone, '{1,2}'::int[] AS arr \\gset\nSELECT 2 AS one \\gset p_\n\\echo :one :flag :gone :arr :p_one\n",
      },
      { echo },
    );
    expect(echo).toEqual(['1 t :gone {1,2} 2']);
  });

  it('fails on zero rows, several rows and invalid names, at the \\gset', async () => {
    expect((await failure({ 'a.sql': 'SELECT 1;\nSELECT 1 AS a WHERE false \\gset\n' })).located).toBe('a.sql:2:27: no rows returned for \\gset');
    expect((await failure({ 'b.sql': 'SELECT generate_series(1, 2) AS a\n  \\gset\n' })).located).toBe('b.sql:2:3: more than one row returned for \\gset');
    expect((await failure({ 'c.sql': 'SELECT 1 AS "a b" \\gset\n' })).located).toBe('c.sql:1:19: invalid variable name: "a b"');
  });

  it('locates a server error in a \\gset query, and refuses \\gset with an empty buffer', async () => {
    expect((await failure({ 'a.sql': 'SELECT 1;\nSELECT nope AS a \\gset\n' })).located).toBe('a.sql:2:8: column "nope" does not exist');
    expect((await failure({ 'b.sql': 'SELECT 1 AS a;\n\\gset\n' })).located).toMatch(/^b\.sql:2:1: \\gset with an empty query buffer is not supported/);
  });

  it('runs a statement ended by \\g, and refuses output to a |pipe', async () => {
    await run({ 'a.sql': 'CREATE TABLE t (id int) \\g\nINSERT INTO t VALUES (1) \\g /dev/null\n' });
    expect(await rows('SELECT id FROM t')).toEqual([{ id: 1 }]);
    expect((await failure({ 'b.sql': 'SELECT 1 \\g |cat\n' })).located).toMatch(/^b\.sql:1:10: \\g with a \|pipe is not supported/);
    expect((await failure({ 'c.sql': '\\o | cat\n' })).located).toMatch(/^c\.sql:1:1: \\o with a \|pipe is not supported/);
  });
});

describe('executor: \\copy ... FROM', () => {
  it('loads a file relative to the including file and counts its rows', async () => {
    const stats = await run(
      { 'sub/a.sql': "CREATE TABLE t (id int, name text);\n\\copy t from '../data/t.csv' (format csv)\n", 'data/t.csv': '1,one\n2,two\n' },
      { only: ['sub/a.sql'] },
    );
    expect(stats).toMatchObject({ statements: 2, rowsCopied: 2 });
    expect(await rows('SELECT id, name FROM t ORDER BY id')).toEqual([{ id: 1, name: 'one' }, { id: 2, name: 'two' }]);
  });

  it('names the \\copy line, the data file and its line when a row is bad', async () => {
    const error = await failure({ 'a.sql': 'CREATE TABLE t (id int);\n\n  \\copy t from data.txt\n', 'data.txt': '1\n2\nthree\n' }, ['a.sql']);
    expect(error).toMatchObject({ code: 'SQL_FAILED', located: 'a.sql:3:3: \\copy from data.txt, line 3: invalid input syntax for type integer: "three"' });
  });

  it('locates an error in inline data (from stdin) at its line in the script', async () => {
    expect((await failure({ 'a.sql': 'CREATE TABLE t (id int);\n\\copy t from stdin\n1\nx\n\\.\n' })).located).toBe(
      'a.sql:4:1: invalid input syntax for type integer: "x"',
    );
  });

  it('fails on a missing file, a parse error, TO, PROGRAM and pstdin with the line of the \\copy', async () => {
    expect(await failure({ 'a.sql': 'CREATE TABLE t (id int);\n\\copy t from missing.csv\n' })).toMatchObject({
      code: 'FILE_UNREADABLE',
      located: 'a.sql:2:1: \\copy: cannot read missing.csv: ENOENT',
    });
    expect((await failure({ 'b.sql': '\\copy t into x\n' })).located).toBe('b.sql:1:1: \\copy: parse error at "into"');
    expect((await failure({ 'c.sql': '\\copy t from\n' })).located).toBe('c.sql:1:1: \\copy: parse error at end of line');
    expect((await failure({ 'd.sql': "\\copy t to 'out.csv'\n" })).located).toMatch(/^d\.sql:1:1: \\copy \.\.\. TO is not supported/);
    expect((await failure({ 'e.sql': "\\copy t from program 'cat x'\n" })).located).toMatch(/^e\.sql:1:1: \\copy \.\.\. FROM PROGRAM is not supported/);
    expect((await failure({ 'f.sql': '\\copy t from pstdin\n' })).located).toMatch(/^f\.sql:1:1: \\copy \.\.\. FROM pstdin reads psql's own standard input/);
  });
});

describe('executor: output-only and refused meta-commands', () => {
  it('prints \\warn apart from \\echo, and \\conninfo as psql does', async () => {
    const echo: string[] = [];
    const warns: string[] = [];
    await run({ 'a.sql': '\\warn careful  now\n\\conninfo\n' }, { echo, warns });
    expect(warns).toEqual(['careful now']);
    expect(echo).toEqual([`You are connected to database "${db.name}" as user "postgres" on host "127.0.0.1" at port "${db.client.port}".`]);
  });

  it('refuses \\getenv, \\prompt and \\! with their reason', async () => {
    expect((await failure({ 'a.sql': '\\getenv home HOME\n' })).located).toMatch(/^a\.sql:1:1: \\getenv is not supported: the template's fingerprint/);
    expect((await failure({ 'b.sql': '\\prompt name\n' })).located).toMatch(/^b\.sql:1:1: \\prompt is not supported: a build reads no input/);
    expect((await failure({ 'c.sql': '\\! ls\n' })).located).toMatch(/^c\.sql:1:1: \\! is not supported/);
  });
});

describe('executor: session state per file', () => {
  it('does not leak SET search_path or statement_timeout into the next file', async () => {
    await run({
      '1.sql': "CREATE SCHEMA app;\nSET search_path TO app;\nSET statement_timeout = '50ms';\nCREATE TABLE inside (id int);",
      '2.sql': 'CREATE TABLE outside (id int);\nSELECT pg_sleep(0.2);',
    });
    expect(await rows(`SELECT table_schema, table_name FROM information_schema.tables WHERE table_name IN ('inside','outside') ORDER BY 2`)).toEqual([
      { table_schema: 'app', table_name: 'inside' },
      { table_schema: 'public', table_name: 'outside' },
    ]);
  });

  it('does not carry \\set variables into the next file', async () => {
    await run({ '1.sql': '\\set v 1\nCREATE TABLE t (c text);', '2.sql': "INSERT INTO t VALUES (':v');" });
    expect(await rows('SELECT c FROM t')).toEqual([{ c: ':v' }]);
  });

  it('refuses a file that leaves a transaction open', async () => {
    await expect(run({ 'a.sql': 'BEGIN;\nCREATE TABLE t (id int);\n' })).rejects.toMatchObject({
      code: 'SQL_FAILED',
      file: 'a.sql',
      message: expect.stringContaining('transaction block'),
    });
    expect(db.client.getTransactionStatus()).toBe('I');
  });
});

describe('executor: errors name file, line and column', () => {
  it('locates a syntax error from the server position', async () => {
    const file = 'CREATE TABLE t (id int);\n\nINSERT INTO t\n  VALUES (1, 2) WHERE;\n';
    await expect(run({ 'db/1_seed/02_users.sql': file })).rejects.toMatchObject({
      code: 'SQL_FAILED',
      file: 'db/1_seed/02_users.sql',
      line: 4,
      column: 17,
      message: 'syntax error at or near "WHERE"',
    });
  });

  it('locates an error without position at the start of the failing statement in a batch', async () => {
    const file = 'CREATE TABLE t (id int primary key);\nINSERT INTO t VALUES (1);\n  INSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2);\n';
    await expect(run({ 'a.sql': file })).rejects.toMatchObject({
      file: 'a.sql',
      line: 3,
      column: 3,
      message: expect.stringContaining('duplicate key'),
      detail: expect.stringContaining('Key (id)=(1) already exists'),
    });
  });

  it('stops at the first error: nothing after it runs', async () => {
    await expect(run({ 'a.sql': 'CREATE TABLE t (id int);\nSELECT 1/0;\n', 'b.sql': 'CREATE TABLE later (id int);' })).rejects.toMatchObject({
      line: 2,
      message: 'division by zero',
    });
    expect(await rows(`SELECT to_regclass('later') AS r`)).toEqual([{ r: null }]);
  });

  it('counts columns in characters after multi-byte text and variables', async () => {
    const file = "\\set v 12345678901234567890\nSELECT ':v', 'é😀', :v, nonexistent_column;\n";
    await expect(run({ 'a.sql': file })).rejects.toMatchObject({ line: 2, column: 24, message: expect.stringContaining('nonexistent_column') });
  });

  it('reports unterminated quotes, dollar quotes and comments where they start', async () => {
    await expect(run({ 'q.sql': "SELECT 1;\nSELECT 'oops;\n" })).rejects.toMatchObject({ code: 'SQL_SYNTAX', file: 'q.sql', line: 2, column: 8 });
    await expect(run({ 'd.sql': 'DO $body$ BEGIN\nEND $bod$;' })).rejects.toMatchObject({ code: 'SQL_SYNTAX', line: 1, column: 4, message: expect.stringContaining('$body$') });
    await expect(run({ 'c.sql': 'SELECT 1; /* a /* b */\n' })).rejects.toMatchObject({ code: 'SQL_SYNTAX', line: 1, column: 11 });
    await expect(run({ 'i.sql': 'SELECT "abc\n' })).rejects.toMatchObject({ code: 'SQL_SYNTAX', line: 1, column: 8 });
  });

  it('reports invalid UTF-8 at its position', async () => {
    const bytes = Buffer.concat([Buffer.from("SELECT 1;\nSELECT 'caf"), Buffer.from([0xe9]), Buffer.from("';\n")]);
    await expect(run({ 'latin1.sql': bytes })).rejects.toMatchObject({ code: 'FILE_ENCODING', file: 'latin1.sql', line: 2, column: 12 });
    const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from("SELECT 'caf"), Buffer.from([0xe9]), Buffer.from("';\n")]);
    await expect(run({ 'bom.sql': withBom })).rejects.toMatchObject({ code: 'FILE_ENCODING', line: 1, column: 12 });
  });

  it('locates a runtime error inside a DO block at its line in the file', async () => {
    const file = "SELECT 1;\nDO $$\nDECLARE n int := 0;\nBEGIN\n  n := n + 1;\n  RAISE EXCEPTION 'boom %', n;\nEND\n$$;\n";
    await expect(run({ 'do.sql': file })).rejects.toMatchObject({ file: 'do.sql', line: 6, column: 3, message: 'boom 1' });
  });

  it('counts the lines of a DO block from the line of its opening tag, whatever the tag', async () => {
    const file = "SELECT 1;\nDO\n$do_1$\nBEGIN\n  RAISE NOTICE 'fine';\n    RAISE EXCEPTION 'boom';\nEND\n$do_1$;\n";
    await expect(run({ 'tag.sql': file })).rejects.toMatchObject({ file: 'tag.sql', line: 6, column: 5, message: 'boom' });
    const multibyte = "DO $é$\nBEGIN\n  PERFORM 1/0;\nEND $é$;\n";
    await expect(run({ 'é.sql': multibyte })).rejects.toMatchObject({ file: 'é.sql', line: 3, column: 3, message: 'division by zero' });
  });

  it('locates a failing SQL statement inside a DO block at its line, not at the DO', async () => {
    const file = 'SELECT 1;\n\nDO $$\nDECLARE n int;\nBEGIN\n  n := 1;\n\n  PERFORM 1/0;\nEND $$;\n';
    await expect(run({ 'div.sql': file })).rejects.toMatchObject({ file: 'div.sql', line: 8, column: 3, message: 'division by zero' });
    const insert = 'CREATE TABLE u (id int PRIMARY KEY);\nDO $$ BEGIN\n  INSERT INTO u VALUES (1);\n  INSERT INTO u VALUES (1);\nEND $$;';
    await expect(run({ 'dup.sql': insert })).rejects.toMatchObject({ file: 'dup.sql', line: 4, column: 3, code: 'SQL_FAILED' });
  });

  it('reports an error inside an included file at its own path', async () => {
    await expect(run({ 'a.sql': '\\ir sub/b.sql', 'sub/b.sql': '\nSELEC 1;' }, { only: ['a.sql'] })).rejects.toMatchObject({
      file: 'sub/b.sql',
      line: 2,
      column: 1,
    });
  });
});

describe('executor: files larger than one read', () => {
  // The reader hands the lexer 1 MiB at a time: statements, strings, COPY blocks and multi-byte
  // characters that straddle those boundaries must come out whole, and lines keep counting.
  const MiB = 1 << 20;

  it('runs statements, a multi-byte character and a COPY block that cross read boundaries', async () => {
    const padding = `-- ${'x'.repeat(MiB - 20)}\n`;
    const copyRows = Array.from({ length: 60_000 }, (_, i) => `${i}\trow ${i} ${'é'.repeat(10)}`).join('\n');
    const script = `${padding}CREATE TABLE t (id int, note text);\nINSERT INTO t VALUES (-1, '${'日'.repeat(10)}');\nCOPY t FROM stdin;\n${copyRows}\n\\.\nINSERT INTO t VALUES (-2, 'after');\n`;
    const stats = await run({ 'big.sql': script });
    expect(stats).toMatchObject({ statements: 4, rowsCopied: 60_000 });
    expect(await rows("SELECT count(*)::int AS n, max(note) FILTER (WHERE id = -1) AS cjk FROM t")).toEqual([{ n: 60_002, cjk: '日'.repeat(10) }]);
  });

  it('locates errors and invalid bytes after the first read', async () => {
    const lines = Array.from({ length: 40_000 }, (_, i) => `INSERT INTO t VALUES (${i}, '${'a'.repeat(20)}');`);
    const script = `CREATE TABLE t (id int, note text);\n${lines.join('\n')}\nSELECT nope FROM t;\n`;
    await expect(run({ 'late.sql': script })).rejects.toMatchObject({ file: 'late.sql', line: 40_002, column: 8 });
    const bytes = Buffer.concat([Buffer.from(`${lines.join('\n')}\nSELECT 'caf`), Buffer.from([0xe9]), Buffer.from("';\n")]);
    await expect(run({ 'bad.sql': bytes })).rejects.toMatchObject({ code: 'FILE_ENCODING', file: 'bad.sql', line: 40_001, column: 12 });
  });
});

describe('executor: client encodings', () => {
  const latin1 = (text: string) => Buffer.from(text, 'latin1');

  it('reads a file in the encoding it sets at its top, and its includes too', async () => {
    await run({
      'a.sql': latin1("-- header\nSET client_encoding = 'LATIN1';\nCREATE TABLE t (s text);\nINSERT INTO t VALUES ('café');\n\\ir b.inc\n"),
      'b.inc': latin1("INSERT INTO t VALUES ('crème');\n"),
      'c.sql': latin1("\\encoding latin1\nINSERT INTO t VALUES ('Zürich');\n"),
    }, { only: ['a.sql', 'c.sql'] });
    expect((await rows('SELECT s FROM t')).map((row) => row.s).sort()).toEqual(['Zürich', 'café', 'crème']);
  });

  it('reads a file included after one that set the encoding in that encoding, as psql would', async () => {
    await run(
      {
        'main.sql': 'CREATE TABLE t (s text);\n\\i a.inc\n\\i b.inc\n',
        'a.inc': "SET client_encoding = 'LATIN1';\nINSERT INTO t VALUES ('a');\n",
        'b.inc': latin1("INSERT INTO t VALUES ('façade');\n"),
      },
      { only: ['main.sql'] },
    );
    expect((await rows('SELECT s FROM t')).map((row) => row.s).sort()).toEqual(['a', 'façade']);
  });

  it('refuses an encoding change in the middle of a file, and encodings it cannot read', async () => {
    await expect(run({ 'mid.sql': "SELECT 1;\nSET client_encoding = 'WIN1252';\n" })).rejects.toMatchObject({
      code: 'FILE_ENCODING',
      file: 'mid.sql',
      line: 2,
      column: 1,
      message: 'client_encoding changes to WIN1252 after the file started as UTF8',
    });
    await expect(run({ 'mule.sql': "SET client_encoding = 'MULE_INTERNAL';\nSELECT 1;\n" })).rejects.toMatchObject({
      code: 'FILE_ENCODING',
      line: 1,
      message: 'client encoding MULE_INTERNAL is not supported',
      hint:
        'dbfast reads UTF8, LATIN1-4, LATIN6-9, ISO_8859_5-8, WIN866, WIN874, WIN1250-1258, KOI8R, KOI8U, EUC_JP, EUC_KR, ' +
        'EUC_CN, UHC, GBK, GB18030, SJIS, BIG5; convert the file (iconv -f MULE_INTERNAL -t UTF-8)',
    });
  });
});

describe('executor: ON_ERROR_STOP', () => {
  it('goes on after failing statements and COPY blocks while it is off, and reports each', async () => {
    const warnings: string[] = [];
    const stats = await run(
      {
        'a.sql': 'CREATE TABLE t (id int PRIMARY KEY);\n\\set ON_ERROR_STOP 0\nCOPY t FROM stdin;\n1\nx\n\\.\nINSERT INTO t VALUES (2);\n\\set ON_ERROR_STOP\nINSERT INTO t VALUES (3);\n',
      },
      { warnings },
    );
    expect(warnings).toEqual(['a.sql:5:1: invalid input syntax for type integer: "x"']);
    expect(stats.failedStatements).toBe(1);
    expect((await rows('SELECT id FROM t ORDER BY id')).map((row) => row.id)).toEqual([2, 3]);
  });

  it('skips the data of a failing COPY, however large, and goes on after it', async () => {
    const warnings: string[] = [];
    // The duplicate comes early: the server's error arrives while megabytes of data are still unsent.
    const data = ['1;x', ...Array.from({ length: 200_000 }, (_, i) => `${i + 1};${'x'.repeat(30)}`)].join('\n');
    const script = `CREATE TABLE t (id int PRIMARY KEY, note text);\n\\unset ON_ERROR_STOP\nCOPY t FROM stdin (DELIMITER ';');\n${data}\n\\.\nINSERT INTO t VALUES (-1, 'after');\n`;
    await run({ 'a.sql': script }, { warnings });
    expect(warnings).toEqual([expect.stringMatching(/^a\.sql:5:1: duplicate key value/)]);
    expect(await rows('SELECT id FROM t')).toEqual([{ id: -1 }]);
  });

  it('locates a failing \\gexec query at the \\gexec line, and goes on after it while ON_ERROR_STOP is off', async () => {
    const script = "CREATE TABLE t (id int PRIMARY KEY);\nSELECT 'INSERT INTO t VALUES (1)', 'INSERT INTO t VALUES (1)'\n  \\gexec\n";
    await expect(run({ 'a.sql': script })).rejects.toMatchObject({ file: 'a.sql', line: 3, column: 3, code: 'SQL_FAILED' });
    const warnings: string[] = [];
    await run({ 'b.sql': `\\unset ON_ERROR_STOP\n${script.replaceAll(' t ', ' u ')}INSERT INTO u VALUES (2);\n` }, { warnings });
    expect(warnings).toEqual([expect.stringMatching(/^b\.sql:4:3: duplicate key value/)]);
    expect((await rows('SELECT id FROM u ORDER BY id')).map((row) => row.id)).toEqual([1, 2]);
  });

  it('goes on after a failing \\gset, and records a \\copy data file whose COPY failed', async () => {
    const warnings: string[] = [];
    const root = await tempRepo({
      'a.sql': "CREATE TABLE t (id int);\n\\unset ON_ERROR_STOP\nSELECT 1 AS n WHERE false \\gset\n\\copy t from 'bad.txt'\nINSERT INTO t VALUES (7);\n",
      'bad.txt': 'x\n',
    });
    const stats = await executeFiles(db.session, [{ relativePath: 'a.sql', absolutePath: join(root, 'a.sql') }], {
      repositoryRoot: root,
      onWarning: (warning) => warnings.push(warning.located),
    });
    expect(warnings).toEqual([
      'a.sql:3:27: no rows returned for \\gset',
      expect.stringMatching(/^a\.sql:4:1: \\copy from bad\.txt, line 1: invalid input syntax/),
    ]);
    expect(stats.includedFiles).toEqual([{ absolutePath: join(root, 'bad.txt'), hash: createHash('sha256').update('x\n').digest('hex') }]);
    expect(await rows('SELECT id FROM t')).toEqual([{ id: 7 }]);
  });

  it('stops again once it is set, and refuses a value psql would refuse', async () => {
    await expect(run({ 'a.sql': '\\unset ON_ERROR_STOP\nSELECT 1/0;\n\\set ON_ERROR_STOP true\nSELECT 1/0;\nCREATE TABLE never (id int);' })).rejects.toMatchObject({ line: 4 });
    expect(await rows("SELECT to_regclass('never') AS t")).toEqual([{ t: null }]);
    await expect(run({ 'b.sql': '\\set ON_ERROR_STOP maybe\n' })).rejects.toMatchObject({
      code: 'SQL_META_COMMAND',
      message: 'unrecognized value "maybe" for "ON_ERROR_STOP": Boolean expected',
    });
  });
});

describe('executor: progress, cancellation and the end of a file', () => {
  it('announces each file before it runs, with its index and the total', async () => {
    const root = await tempRepo({ '1.sql': 'SELECT 1;', '2.sql': 'SELECT 2;' });
    const started: string[] = [];
    await executeFiles(db.session, ['1.sql', '2.sql'].map((relativePath) => ({ relativePath, absolutePath: join(root, relativePath) })), {
      repositoryRoot: root,
      onFileStart: (file, index, total) => started.push(`${file.relativePath} ${index + 1}/${total}`),
    });
    expect(started).toEqual(['1.sql 1/2', '2.sql 2/2']);
  });

  it('stops before the next statement once its signal is aborted', async () => {
    const root = await tempRepo({ 'a.sql': 'CREATE TABLE t (id int);\n\\echo stop here\nINSERT INTO t VALUES (1);\n' });
    const controller = new AbortController();
    const running = executeFiles(db.session, [{ relativePath: 'a.sql', absolutePath: join(root, 'a.sql') }], {
      repositoryRoot: root,
      signal: controller.signal,
      onEcho: () => controller.abort(),
    });
    await expect(running).rejects.toMatchObject({ name: 'AbortError' });
    expect(await rows('SELECT count(*)::int AS n FROM t')).toEqual([{ n: 0 }]);
  });

  it('refuses a file that ends inside a failed transaction, with ON_ERROR_STOP off too', async () => {
    const warnings: string[] = [];
    await expect(run({ 'a.sql': '\\unset ON_ERROR_STOP\nBEGIN;\nCREATE TABLE t (id int);\nSELECT 1/0;\n' }, { warnings })).rejects.toMatchObject({
      code: 'SQL_FAILED',
      file: 'a.sql',
      message: 'file ends inside a transaction block (BEGIN without COMMIT)',
      hint: 'add COMMIT at the end of the file; psql would silently roll this work back',
    });
    expect(warnings).toEqual(['a.sql:4:1: division by zero']);
    expect(db.client.getTransactionStatus()).toBe('I');
    expect(await rows(`SELECT to_regclass('t') AS t`)).toEqual([{ t: null }]);
  });

  it('fails on COPY data that never ends even with ON_ERROR_STOP off, and leaves the connection usable', async () => {
    const warnings: string[] = [];
    await expect(run({ 'a.sql': '\\unset ON_ERROR_STOP\nCREATE TABLE t (id int);\nCOPY t FROM stdin;\n1\n2\n' }, { warnings })).rejects.toMatchObject({
      code: 'SQL_SYNTAX',
      line: 3,
      message: expect.stringContaining('COPY data never ends'),
    });
    expect(warnings).toEqual([]);
    expect(await rows('SELECT count(*)::int AS n FROM t')).toEqual([{ n: 0 }]);
  });
});

describe('executor: meta-commands psql has and dbfast refuses', () => {
  it('tells an unsupported psql command from an invalid one', async () => {
    expect((await failure({ 'a.sql': '\\cd /tmp\n' })).located).toBe(`a.sql:1:1: unsupported psql meta-command \\cd`);
    expect((await failure({ 'b.sql': 'SELECT 1;\n\\bogus\n' })).located).toBe('b.sql:2:1: invalid command \\bogus');
    expect((await failure({ 'c.sql': '\\cd\n' })).hint).toMatch(/^dbfast supports \\i, \\ir, /);
  });

  it('refuses output to a |pipe for every command that can write one, and accepts a file name holding a |', async () => {
    for (const [file, line] of [['a.sql', 'SELECT 1 \\gx |cat'], ['b.sql', '\\out |cat'], ['c.sql', 'SELECT 1 \\g (format=csv)|cat'], ['d.sql', '\\o\t|cat']]) {
      expect((await failure({ [file!]: `${line}\n` })).located, line).toMatch(/ with a \|pipe is not supported: dbfast does not run programs from SQL files$/);
    }
    await run({ 'e.sql': 'SELECT 1 \\g not|a-pipe\n\\o not|a-pipe\n' });
  });

  it('refuses \\copy inside a statement, and \\i without a file name', async () => {
    expect((await failure({ 'a.sql': 'CREATE TABLE t (id int);\nINSERT INTO t\n\\copy t from stdin\nVALUES (1);\n' })).located).toBe(
      'a.sql:3:1: \\copy inside a statement is not supported',
    );
    expect((await failure({ 'b.sql': 'SELECT 1;\n\\i\n' })).located).toBe('b.sql:2:1: \\i needs a file name');
  });

  it('refuses \\set AUTOCOMMIT off, and takes AUTOCOMMIT on or unset', async () => {
    await run({ 'a.sql': '\\set AUTOCOMMIT on\n\\set AUTOCOMMIT\n\\set AUTOCOMMIT true\nCREATE TABLE t (id int);\n' });
    expect((await failure({ 'b.sql': '\\set AUTOCOMMIT off\n' })).located).toBe('b.sql:1:1: \\set AUTOCOMMIT off is not supported');
    expect((await failure({ 'c.sql': '\\set AUTOCOMMIT maybe\n' })).located).toBe('c.sql:1:1: \\set AUTOCOMMIT off is not supported');
  });

  it('shows a file included from outside the repository by its absolute path', async () => {
    const outside = await tempRepo({ 'shared.sql': 'SELECT 1;\nSELEC 2;\n' });
    const error = await failure({ 'a.sql': `\\i ${join(outside, 'shared.sql')}\n` });
    expect(error.located).toBe(`${join(outside, 'shared.sql')}:2:1: syntax error at or near "SELEC"`);
  });
});

describe('executor: where errors point, and what they carry', () => {
  it('points at the variable when the error is inside its value', async () => {
    const error = await failure({ 'a.sql': '\\set v \'nonexistent_column\'\nSELECT 1,\n  :v;\n' });
    expect(error.located).toBe('a.sql:3:3: column "nonexistent_column" does not exist');
  });

  it("keeps the server's hint, and its context after the detail", async () => {
    const file = "DO $$\nBEGIN\n  RAISE EXCEPTION 'boom' USING DETAIL = 'what broke', HINT = 'fix it';\nEND $$;\n";
    const error = await run({ 'a.sql': file }).catch((thrown: DbfastError) => thrown);
    expect(error).toMatchObject({ code: 'SQL_FAILED', hint: 'fix it', detail: 'DETAIL: what broke\nCONTEXT: PL/pgSQL function inline_code_block line 3 at RAISE' });
    const plain = await run({ 'b.sql': 'SELECT 1/0;\n' }).catch((thrown: DbfastError) => thrown);
    expect(plain).toMatchObject({ detail: undefined, hint: undefined });
  });
});

describe('executor: client encodings set at the top of a file', () => {
  const latin1 = (text: string) => Buffer.from(text, 'latin1');

  it("looks past pg_dump's set_config and other SET lines, and reads \\encoding with quotes", async () => {
    await run(
      {
        'a.sql': latin1("SET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\nSET client_encoding = 'LATIN1';\nCREATE TABLE public.t (s text);\nINSERT INTO public.t VALUES ('café');\n"),
        'b.sql': latin1("\\encoding 'LATIN1'\nINSERT INTO t VALUES ('crème');\n"),
        'c.sql': "SET client_encoding TO DEFAULT;\nINSERT INTO t VALUES ('naïve');\n",
      },
    );
    expect((await rows('SELECT s FROM t ORDER BY s')).map((row) => row.s)).toEqual(['café', 'crème', 'naïve']);
  });

  it('refuses \\encoding changing the encoding in the middle of a file, and takes it when it changes nothing', async () => {
    await run({ 'a.sql': 'SELECT 1;\n\\encoding UTF8\n\\encoding\nSET client_encoding = unicode;\n' });
    expect((await failure({ 'b.sql': 'SELECT 1;\n\\encoding LATIN1\n' })).located).toBe(
      'b.sql:2:1: client_encoding changes to LATIN1 after the file started as UTF8',
    );
  });
});
