/**
 * Real-world scripts (../shared/corpus: pagila, chinook, northwind) loaded with scanRepository and
 * executeFiles must give the row counts their READMEs list (checked there with psql on PostgreSQL 15).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { scanRepository } from '../../../src/core/scan.js';
import { executeFiles } from '../../../src/core/sql/execute.js';
import { freshDatabase, query } from '../../helpers/database.js';

const repositoryRoot = fileURLToPath(new URL('../../../', import.meta.url));
const corpusRoot = resolve(repositoryRoot, '../shared/corpus');

/** The corpus is part of the test setup: when it is missing the tests fail, they never skip. */
function corpusFolder(name: string): string {
  const folder = join(corpusRoot, name);
  if (!existsSync(join(folder, 'README.md'))) {
    throw new Error(
      `corpus folder ${folder} is missing: the corpus tests need ../shared/corpus next to the repository ` +
        '(pagila, chinook and northwind, see its README.md)',
    );
  }
  return folder;
}

let db: Awaited<ReturnType<typeof freshDatabase>>;
beforeEach(async () => {
  db = await freshDatabase();
});
afterEach(async () => {
  await db.drop();
});

/** Scans the corpus repository and runs it into the test database, as `dbfast build` would. */
async function load(name: string) {
  const root = corpusFolder(name);
  const { files } = await scanRepository({ root });
  const stats = await executeFiles(db.session, files, { repositoryRoot: root });
  return { files: files.map((file) => file.relativePath), stats };
}

/** Row counts of the given tables, read over a new connection (the scripts leave search_path empty). */
async function rowCounts(tables: string[]): Promise<Record<string, number>> {
  const sql = tables.map((table) => `SELECT '${table}' AS name, count(*)::int AS n FROM public.${table}`).join(' UNION ALL ');
  const rows = await query<{ name: string; n: number }>(db.name, sql);
  return Object.fromEntries(rows.map((row) => [row.name, row.n]));
}

async function scalar(sql: string): Promise<unknown> {
  const [row] = await query(db.name, sql);
  return Object.values(row!)[0];
}

describe('the real-world corpus', () => {
  it('is present at ../shared/corpus', () => {
    for (const name of ['pagila', 'chinook', 'northwind']) expect(corpusFolder(name)).toBe(join(corpusRoot, name));
  });

  it('loads pagila: a pg_dump schema, then 21 COPY blocks', async () => {
    const { files, stats } = await load('pagila');
    expect(files).toEqual(['0_schema/pagila-schema.sql', '1_seed/pagila-data.sql']);
    expect(stats).toMatchObject({ files: 2, rowsCopied: 49_636 });
    expect(
      await rowCounts([
        'actor', 'address', 'category', 'city', 'country', 'customer', 'film', 'film_actor', 'film_category',
        'inventory', 'language', 'payment', 'rental', 'staff', 'store',
      ]),
    ).toEqual({
      actor: 200, address: 603, category: 16, city: 600, country: 109, customer: 599, film: 1000, film_actor: 5462,
      film_category: 2367, inventory: 4581, language: 6, payment: 16049, rental: 16044, staff: 1500, store: 500,
    });
    expect(
      await rowCounts(['01', '02', '03', '04', '05', '06', '07'].map((month) => `payment_p2022_${month}`)),
    ).toEqual({
      payment_p2022_01: 723, payment_p2022_02: 2401, payment_p2022_03: 2713, payment_p2022_04: 2547,
      payment_p2022_05: 2677, payment_p2022_06: 2654, payment_p2022_07: 2334,
    });
    expect(await scalar('SELECT sum(amount)::text FROM public.payment')).toBe('67416.51');
    // The tsvector trigger fired for every row COPY loaded.
    expect(await scalar('SELECT count(*)::int FROM public.film WHERE fulltext IS NOT NULL')).toBe(1000);
    expect(await scalar(`SELECT relispopulated FROM pg_class WHERE oid = 'public.rental_by_category'::regclass`)).toBe(false);
    expect(await scalar(`SELECT last_value::int FROM pg_sequences WHERE sequencename = 'payment_payment_id_seq'`)).toBe(32098);
    expect(await scalar(`SELECT last_value::int FROM pg_sequences WHERE sequencename = 'rental_rental_id_seq'`)).toBe(16049);
    expect(await scalar(`SELECT count(*)::int FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                         WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace`)).toBe(15);
    expect(await scalar(`SELECT count(*)::int FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace`)).toBe(36);
    expect(await scalar(`SELECT count(*)::int FROM pg_indexes WHERE schemaname = 'public'`)).toBe(56);
    expect(await scalar(`SELECT count(*)::int FROM pg_proc WHERE pronamespace = 'public'::regnamespace`)).toBe(10);
  });

  it('loads chinook: generated DDL and big multi-row INSERTs', async () => {
    const { files, stats } = await load('chinook');
    expect(files).toEqual(['0_chinook/Chinook_PostgreSql.sql']);
    expect(stats).toMatchObject({ files: 1, rowsCopied: 0 });
    expect(
      await rowCounts([
        'album', 'artist', 'customer', 'employee', 'genre', 'invoice', 'invoice_line', 'media_type', 'playlist',
        'playlist_track', 'track',
      ]),
    ).toEqual({
      album: 347, artist: 275, customer: 59, employee: 8, genre: 25, invoice: 412, invoice_line: 2240, media_type: 5,
      playlist: 18, playlist_track: 8715, track: 3503,
    });
    expect(await scalar('SELECT sum(total)::text FROM public.invoice')).toBe('2328.60');
    expect(await scalar('SELECT name FROM public.artist WHERE artist_id = 6')).toBe('Antônio Carlos Jobim');
  });

  it('loads northwind: an old pg_dump-style script with 3,362 single-row INSERTs', async () => {
    const { files, stats } = await load('northwind');
    expect(files).toEqual(['0_northwind/northwind.sql']);
    expect(stats).toMatchObject({ files: 1, rowsCopied: 0 });
    expect(
      await rowCounts([
        'categories', 'customer_customer_demo', 'customer_demographics', 'customers', 'employee_territories',
        'employees', 'order_details', 'orders', 'products', 'region', 'shippers', 'suppliers', 'territories', 'us_states',
      ]),
    ).toEqual({
      categories: 8, customer_customer_demo: 0, customer_demographics: 0, customers: 91, employee_territories: 49,
      employees: 9, order_details: 2155, orders: 830, products: 77, region: 4, shippers: 6, suppliers: 29,
      territories: 53, us_states: 51,
    });
    expect(await scalar('SELECT sum(unit_price * quantity)::numeric(12,2)::text FROM public.order_details')).toBe('1354458.59');
    // standard_conforming_strings: '\n' in a plain literal is a backslash and an n, not a newline.
    expect(await scalar(`SELECT address FROM public.employees WHERE address LIKE '%Apt. 2A'`)).toBe('507 - 20th Ave. E.\\nApt. 2A');
    expect(await scalar(`SELECT city FROM public.customers WHERE customer_id = 'ANATR'`)).toBe('México D.F.');
  });
});

describe('the unmodified upstream chinook script', () => {
  // Like psql, dbfast runs the lines before `\c`: DROP DATABASE IF EXISTS chinook; CREATE DATABASE chinook.
  const dropChinook = () => query('postgres', 'DROP DATABASE IF EXISTS chinook WITH (FORCE)');
  afterAll(dropChinook);

  it('stops at its \\c line with SQL_META_COMMAND', async () => {
    await dropChinook();
    const root = corpusFolder('chinook');
    const relativePath = 'upstream/Chinook_PostgreSql.sql.orig';
    const run = executeFiles(db.session, [{ absolutePath: join(root, relativePath), relativePath }], { repositoryRoot: root });
    await expect(run).rejects.toMatchObject({ code: 'SQL_META_COMMAND', file: relativePath, line: 28, column: 1 });
    await expect(run).rejects.toThrow(/\\c is not supported/);
    expect(await query('postgres', `SELECT datname FROM pg_database WHERE datname = 'chinook'`)).toEqual([{ datname: 'chinook' }]);
    // Nothing after the \c line ran.
    expect(await scalar(`SELECT count(*)::int FROM pg_class WHERE relnamespace = 'public'::regnamespace`)).toBe(0);
  });
});
