/**
 * Client encodings, with PostgreSQL as the oracle: the names it accepts for each encoding, and how
 * it converts text to each encoding's bytes, which dbfast must decode back to the same text.
 */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canonicalEncoding, encodingSetBy } from '../../../src/core/sql/encoding.js';
import { executeFiles } from '../../../src/core/sql/execute.js';
import { freshDatabase, query } from '../../helpers/database.js';
import { tempRepo } from '../../helpers/repo.js';

/** The client encodings dbfast reads, by PostgreSQL's names. */
const READABLE = [
  'UTF8', 'SQL_ASCII', 'LATIN1', 'LATIN2', 'LATIN3', 'LATIN4', 'LATIN6', 'LATIN7', 'LATIN8', 'LATIN9',
  'ISO_8859_5', 'ISO_8859_6', 'ISO_8859_7', 'ISO_8859_8', 'WIN866', 'WIN874', 'WIN1250', 'WIN1251', 'WIN1252',
  'WIN1253', 'WIN1254', 'WIN1255', 'WIN1256', 'WIN1257', 'WIN1258', 'KOI8R', 'KOI8U', 'EUC_JP', 'EUC_KR',
  'EUC_CN', 'UHC', 'GBK', 'GB18030', 'SJIS', 'BIG5',
];

/** PostgreSQL 15's encoding names and aliases (src/common/encnames.c), as written in files, and a few it does not know. */
const NAMES = [
  'abc', 'alt', 'big5', 'euccn', 'eucjis2004', 'eucjp', 'euckr', 'euctw', 'gb18030', 'gbk', 'iso88591', 'iso885910',
  'iso885913', 'iso885914', 'iso885915', 'iso885916', 'iso88592', 'iso88593', 'iso88594', 'iso88595', 'iso88596',
  'iso88597', 'iso88598', 'iso88599', 'johab', 'koi8', 'koi8r', 'koi8u', 'latin1', 'latin2', 'latin3', 'latin4',
  'latin5', 'latin6', 'latin7', 'latin8', 'latin9', 'latin10', 'mskanji', 'muleinternal', 'shiftjis', 'shiftjis2004',
  'sjis', 'sqlascii', 'tcvn', 'tcvn5712', 'uhc', 'unicode', 'utf8', 'vscii', 'win', 'win1250', 'win1251', 'win1252',
  'win1253', 'win1254', 'win1255', 'win1256', 'win1257', 'win1258', 'win866', 'win874', 'win932', 'win936', 'win949',
  'win950', 'windows1250', 'windows1251', 'windows1252', 'windows1253', 'windows1254', 'windows1255', 'windows1256',
  'windows1257', 'windows1258', 'windows866', 'windows874', 'windows932', 'windows936', 'windows949', 'windows950',
  'UTF-8', 'Unicode', 'ISO_8859_1', 'ISO-8859-15', 'Windows-1252', 'EUC_JP', 'Shift_JIS', 'SQL_ASCII', 'KOI8-U',
  'utf16', 'latin', 'x', '',
];

/** Text in many scripts: each encoding gets the characters PostgreSQL can convert to it. */
const SAMPLE = "Az09 ;'\\ éüßøåñ ŁőžčĆĂș ğış ąėų ŵŷ Ωαβγ ЖжЯяЁё іїєґ שלום سلام ไทย ơư データソ表 日本語中文 한국어 ½°§";

/**
 * Where dbfast's decoder and PostgreSQL part ways: PostgreSQL writes Cyrillic and kana in BIG5's ETEN
 * rows (0xC6A1-0xC7FC), which WHATWG's big5 (HKSCS) reads as private-use characters.
 */
const KNOWN_DIFFERENCES: Record<string, RegExp> = { BIG5: /[\u0400-\u04ff\u3040-\u30ff]/g };

describe('canonicalEncoding', () => {
  it('reads every name PostgreSQL reads, as the encoding PostgreSQL reads it as, and no other', async () => {
    const list = NAMES.map((name) => `'${name}'`).join(', ');
    const rows = await query<{ name: string; encoding: string }>(
      'postgres',
      `SELECT name, pg_encoding_to_char(pg_char_to_encoding(name)) AS encoding FROM unnest(ARRAY[${list}]::text[]) AS name`,
    );
    const expected = rows.map(({ name, encoding }) => [name, READABLE.includes(encoding) ? encoding.replaceAll('_', '') : null]);
    expect(NAMES.map((name) => [name, canonicalEncoding(name)])).toEqual(expected);
  });
});

describe('files in every readable encoding', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  beforeEach(async () => {
    db = await freshDatabase();
  });
  afterEach(async () => {
    await db.drop();
  });

  it('are read as PostgreSQL converts text to their bytes', async () => {
    await db.client.query(`
      CREATE FUNCTION representable(t text, encoding name) RETURNS text LANGUAGE plpgsql AS $$
      DECLARE kept text := ''; c text;
      BEGIN
        FOREACH c IN ARRAY regexp_split_to_array(t, '') LOOP
          BEGIN PERFORM convert_to(c, encoding); kept := kept || c; EXCEPTION WHEN OTHERS THEN NULL; END;
        END LOOP;
        RETURN kept;
      END $$`);
    const { rows } = await db.client.query<{ encoding: string; text: string; bytes: Buffer }>(
      `SELECT encoding, t AS text, convert_to(format('SET client_encoding = %L;\nINSERT INTO texts VALUES (%L, %L);\n', encoding, encoding, t), encoding) AS bytes
       FROM unnest($1::text[], $2::text[]) AS input (encoding, sample), representable(sample, encoding) AS t`,
      [READABLE, READABLE.map((encoding) => SAMPLE.replace(KNOWN_DIFFERENCES[encoding] ?? '', ''))],
    );
    const files = Object.fromEntries(rows.map(({ encoding, bytes }) => [`${encoding}.sql`, bytes]));
    const root = await tempRepo(files);
    await db.client.query('CREATE TABLE texts (encoding text, body text)');
    await executeFiles(
      db.session,
      rows.map(({ encoding }) => ({ relativePath: `${encoding}.sql`, absolutePath: join(root, `${encoding}.sql`) })),
      { repositoryRoot: root },
    );
    const { rows: stored } = await db.client.query<{ encoding: string; body: string }>('SELECT encoding, body FROM texts');
    expect(Object.fromEntries(stored.map(({ encoding, body }) => [encoding, body]))).toEqual(
      Object.fromEntries(rows.map(({ encoding, text }) => [encoding, text])),
    );
    // Not vacuous: every encoding got more than ASCII.
    for (const { encoding, text } of rows) expect(text.length, encoding).toBeGreaterThan(12);
  });
});

describe('encodingSetBy', () => {
  const setBy = (text: string) => encodingSetBy(text, text.trim().split(/\s+/).map((word) => word.toLowerCase()));

  it('names the encoding of SET [SESSION] client_encoding = / TO and SET NAMES, quoted or not', () => {
    expect(setBy("SET client_encoding = 'LATIN1'")).toBe('LATIN1');
    expect(setBy('set CLIENT_ENCODING to "win1252"')).toBe('win1252');
    expect(setBy('SET SESSION client_encoding TO euc_jp')).toBe('euc_jp');
    expect(setBy('SET SESSION \t client_encoding TO euc_jp')).toBe('euc_jp');
    expect(setBy("SET client_encoding='iso-8859-1'")).toBe('iso-8859-1');
    expect(setBy("SET NAMES 'UTF8'")).toBe('UTF8');
    expect(setBy('SET\n  names\tkoi8r  \n')).toBe('koi8r');
    expect(setBy("\n  SET NAMES 'UTF8'")).toBe('UTF8');
    expect(setBy("SET client_encoding = ''")).toBe('');
    expect(setBy('SET client_encoding TO DEFAULT')).toBe('DEFAULT');
  });

  it('ignores every other statement', () => {
    for (const text of [
      "SET search_path = 'x'",
      'RESET client_encoding',
      "SET client_encoding = 'LATIN1', 'UTF8'",
      "SET client_encoding = 'LATIN1' ;x",
      "SET client_encoding = 'LATIN1'x",
      "SET client_encodings = 'LATIN1'",
      "SET client_encoding 'LATIN1'",
      "SELECT 'SET client_encoding = LATIN1'",
      "SETclient_encoding = 'LATIN1'",
      'SET client_encoding = latin 1',
    ]) {
      expect(setBy(text), text).toBeUndefined();
    }
  });
});
