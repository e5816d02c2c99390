/**
 * What `dbfast serve` keeps on the server, so that a restart finds it: templates initialised
 * through the IntegreSQL API and their test databases, marked in their comments. Names come from
 * a digest of the hash, so that a hash of any length gives names within PostgreSQL's 63 bytes; the
 * hash itself is in the metadata.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { dropDatabase } from '../pg/databases.js';
import { METADATA_COLUMNS, type MetadataColumns, parseMetadata, writeMetadataSql } from '../pg/metadata.js';
import { quoteLiteral } from '../sql/quote.js';

export const SERVE_PREFIX = 'dbfast_serve_';

export interface ServeTemplateMetadata {
  kind: 'serve-template';
  hash: string;
  /** Initialising until the client finalises it; only finalised templates are cloned. */
  state: 'initializing' | 'ready';
  createdAt: string;
}

export interface ServeTestMetadata {
  kind: 'serve-test';
  hash: string;
  id: number;
  /** The template database it was copied from: a template initialised again is another one. */
  templateOid: number;
  /** Ready: a fresh copy nobody was given; dirty: handed out, never handed out again before it is recreated. */
  state: 'ready' | 'dirty';
  createdAt: string;
}

/** `dbfast_serve_<16 hex>`: 64 bits of SHA-256, whatever the hash's length. */
export function templateDatabaseName(hash: string): string {
  return `${SERVE_PREFIX}${createHash('sha256').update(hash).digest('hex').slice(0, 16)}`;
}

export function testDatabaseName(template: string, id: number): string {
  return `${template}_${id}`;
}

const NAME = new RegExp(`^${SERVE_PREFIX}[0-9a-f]{16}(?:_\\d{1,9})?$`);

export interface ServeCatalog {
  templates: Array<ServeTemplateMetadata & { name: string; oid: number }>;
  tests: Array<ServeTestMetadata & { name: string }>;
  /** Named like the server's databases but unmarked: copies a killed server never finished. */
  unfinished: string[];
}

export async function readCatalog(admin: pg.Client): Promise<ServeCatalog> {
  const { rows } = await admin.query<MetadataColumns & { oid: number; datname: string }>(
    `SELECT d.oid, d.datname, ${METADATA_COLUMNS} FROM pg_database d WHERE starts_with(d.datname, ${quoteLiteral(SERVE_PREFIX)})`,
  );
  const catalog: ServeCatalog = { templates: [], tests: [], unfinished: [] };
  for (const row of rows.filter((row) => NAME.test(row.datname))) {
    const template = parseMetadata<ServeTemplateMetadata>(row, 'serve-template');
    const test = parseMetadata<ServeTestMetadata>(row, 'serve-test');
    if (template) catalog.templates.push({ ...template, name: row.datname, oid: Number(row.oid) });
    else if (test) catalog.tests.push({ ...test, name: row.datname });
    else catalog.unfinished.push(row.datname);
  }
  return catalog;
}

export function markSql(name: string, metadata: ServeTemplateMetadata | ServeTestMetadata): string {
  return writeMetadataSql(name, metadata, 'comment');
}

/** Drops every database `dbfast serve` made on this server, for `dbfast clean --serve` (a running serve drops its own on DELETE /api/v1/admin/templates). */
export async function dropServeDatabases(admin: pg.Client): Promise<string[]> {
  const { templates, tests, unfinished } = await readCatalog(admin);
  const names = [...tests.map((test) => test.name), ...unfinished, ...templates.map((template) => template.name)];
  for (const name of names) await dropDatabase(admin, name);
  return names;
}
