/**
 * Clones: databases created from a template with CREATE DATABASE ... TEMPLATE, given the
 * template's database properties and marked with dbfast's metadata, so that list/drop only ever
 * touch databases dbfast created.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { DbfastError } from './errors.js';
import { validateDatabaseName } from './names.js';
import { createDatabase, dropDatabase } from './pg/databases.js';
import { lockKeys, tryAdvisoryLock } from './pg/locks.js';
import { METADATA_COLUMNS, type MetadataColumns, type MetadataPlace, metadataPlace, parseMetadata, writeMetadataSql } from './pg/metadata.js';
import { copyPropertiesSql, type DatabaseProperties, PROPERTIES_COLUMNS } from './properties.js';
import { quoteLiteral } from './sql/quote.js';

export interface CloneMetadata {
  kind: 'clone';
  template: string;
  fingerprint: string;
  createdAt: string;
}

/** A clone made ahead for the warm pool (pool.ts). */
export interface SpareMetadata {
  kind: 'spare';
  template: string;
  fingerprint: string;
  /** The template database it was copied from: a rebuild makes a new one. */
  templateOid: number;
  createdAt: string;
}

export interface CloneInfo extends CloneMetadata {
  name: string;
  sizeBytes: number;
}

export interface CreateCloneOptions {
  template: string;
  fingerprint: string;
  /** Defaults to `<template>_<short id>`. */
  name?: string;
  /** Replace an existing clone of that name (never a database dbfast did not create). */
  replace?: boolean;
  /** At most this many CREATE DATABASE at once on the server, across all processes. */
  maxConcurrent?: number;
  /** Give up (waiting for a slot and copying) after this long; 0 for no limit. */
  timeoutMs?: number;
  /** PostgreSQL 15+ only; older servers always copy files. */
  strategy?: 'file_copy' | 'wal_log';
  /** A spare for the warm pool (pool.ts), not yet a clone anyone was given. */
  spare?: boolean;
}

export function generateCloneName(template: string): string {
  return `${template}_${randomBytes(4).toString('hex')}`;
}

interface CloneSourceRow extends MetadataColumns, DatabaseProperties {
  oid: number;
  datname: string;
}

/**
 * CREATE DATABASE ... TEMPLATE, then, in one more round trip, the template's database properties
 * and the clone's metadata. A clone that cannot be completed is dropped, never handed out.
 */
export async function createClone(admin: pg.Client, options: CreateCloneOptions): Promise<string> {
  const name = validateDatabaseName(options.name ?? generateCloneName(options.template));
  for (let attempt = 1; ; attempt++) {
    const { rows } = await admin.query<CloneSourceRow>(
      `SELECT d.oid, d.datname, ${METADATA_COLUMNS}, ${PROPERTIES_COLUMNS} FROM pg_database d WHERE d.datname IN ($1, $2)`,
      [name, options.template],
    );
    const existing = rows.find((row) => row.datname === name);
    if (existing) {
      if (!parseMetadata(existing, 'clone')) {
        const template = parseMetadata(existing, 'template') !== null;
        const what = template ? 'is a dbfast template, not a clone' : 'already exists and was not created by dbfast';
        throw new DbfastError('USAGE', `database "${name}" ${what}`, { hint: 'choose another name with --output' });
      }
      if (!options.replace) {
        throw new DbfastError('USAGE', `database "${name}" already exists`, { hint: 'use --replace to drop and recreate it' });
      }
      await dropDatabase(admin, name);
    }
    await copyTemplate(admin, name, options);
    const template = rows.find((row) => row.datname === options.template);
    const copied = await completeClone(admin, name, template, options).catch(async (error) => {
      await dropDatabase(admin, name).catch(() => {});
      throw error;
    });
    if (copied) return name;
    // A rebuild swapped another template in between reading its properties and copying it: again,
    // but never hand out contents of one build with the properties of another.
    await dropDatabase(admin, name);
    if (attempt >= 3) {
      throw new DbfastError('TIMEOUT', `${options.template} was rebuilt under every attempt to clone it (${attempt})`, {
        hint: 'something rebuilds the template continuously; try again once it settles',
      });
    }
  }
}

async function copyTemplate(admin: pg.Client, name: string, options: CreateCloneOptions): Promise<void> {
  const deadline = options.timeoutMs ? Date.now() + options.timeoutMs : Number.POSITIVE_INFINITY;
  const timedOut = () => cloneTimeout(options.timeoutMs!);
  await withCloneSlot(admin, options.maxConcurrent ?? 0, deadline, timedOut, async () => {
    const remaining = deadline - Date.now();
    // The connection is this clone's alone (see pg/locks.ts), so the timeout cannot leak into another's CREATE.
    if (Number.isFinite(remaining)) await admin.query(`SET statement_timeout = ${Math.max(1, Math.floor(remaining))}`);
    try {
      await createDatabase(admin, name, { template: options.template, strategy: options.strategy });
    } catch (error) {
      if ((error as { code?: string }).code === QUERY_CANCELED) throw timedOut();
      throw error;
    } finally {
      if (Number.isFinite(remaining)) await admin.query('RESET statement_timeout');
    }
  });
}

/**
 * Gives the clone the template's properties and its metadata in one implicit transaction; false
 * when the template is no longer the one whose properties were read. Metadata goes where the
 * template's is; a role that may not set it there falls back to the comment.
 */
async function completeClone(admin: pg.Client, name: string, template: CloneSourceRow | undefined, options: CreateCloneOptions) {
  const common = { template: options.template, fingerprint: options.fingerprint, createdAt: new Date().toISOString() };
  const metadata: CloneMetadata | SpareMetadata =
    options.spare && template ? { kind: 'spare', ...common, templateOid: Number(template.oid) } : { kind: 'clone', ...common };
  const batch = (place: MetadataPlace) =>
    [
      ...(template ? copyPropertiesSql(name, place === 'comment' ? { ...template, comment: null } : template) : []),
      writeMetadataSql(name, metadata, place),
      `SELECT oid FROM pg_database WHERE datname = ${quoteLiteral(options.template)}`,
    ].join(';\n');
  const place = template ? metadataPlace(template) : 'comment';
  const results = await admin.query(batch(place)).catch((error) => {
    if (place === 'setting' && (error as { code?: string }).code === INSUFFICIENT_PRIVILEGE) return admin.query(batch('comment'));
    throw error;
  }).catch((error: Error) => {
    throw new DbfastError('SQL_FAILED', `cannot give clone ${name} the properties of ${options.template}: ${error.message}`, {
      hint: (error as { hint?: string }).hint,
      cause: error,
    });
  });
  const last = ([] as pg.QueryResult[]).concat(results).at(-1)!;
  return !template || Number(last.rows[0]?.oid) === Number(template.oid);
}

const INSUFFICIENT_PRIVILEGE = '42501';
const QUERY_CANCELED = '57014';

function cloneTimeout(ms: number): DbfastError {
  return new DbfastError('TIMEOUT', `cloning took longer than clone_timeout_ms (${ms} ms)`, {
    hint: 'raise [performance] clone_timeout_ms, or lower max_concurrent_clones contention',
  });
}

/** A server-wide semaphore of `max` advisory-lock slots, so it holds across processes. */
async function withCloneSlot<T>(
  admin: pg.Client,
  max: number,
  deadline: number,
  timedOut: () => DbfastError,
  work: () => Promise<T>,
): Promise<T> {
  if (max <= 0) return work();
  for (let round = 0; ; round++) {
    for (let slot = 0; slot < max; slot++) {
      const taken = await tryAdvisoryLock(admin, lockKeys.cloneSlot(slot), work);
      if (taken.locked) return taken.result;
    }
    if (Date.now() >= deadline) throw timedOut();
    await new Promise((resolve) => setTimeout(resolve, Math.min(5 * 2 ** round, 100)));
  }
}

export async function listClones(admin: pg.Client): Promise<CloneInfo[]> {
  const { rows } = await admin.query<MetadataColumns & { datname: string; size: string }>(
    `SELECT d.datname, m.*, pg_database_size(d.oid)::text AS size FROM pg_database d, LATERAL (SELECT ${METADATA_COLUMNS}) m
      WHERE coalesce(m.metadata, m.comment) LIKE '{"dbfast":{"kind":"clone"%' ORDER BY d.datname`,
  );
  return rows.flatMap((row) => {
    const metadata = parseMetadata<CloneMetadata>(row, 'clone');
    return metadata ? [{ ...metadata, name: row.datname, sizeBytes: Number(row.size) }] : [];
  });
}

export interface CleanupRules {
  /** Drop clones created longer ago than this. */
  olderThanMs?: number;
  /** Always keep this many of the newest clones. */
  keepLast?: number;
  /** Drop clones whatever their age: contradicts `olderThanMs`. */
  all?: boolean;
}

/**
 * Which clones `clean` drops: old ones (or all), sparing the `keepLast` newest. `all` with `olderThanMs`
 * is a USAGE error: either silently winning would drop clones the other meant to keep, or keep some
 * the other meant to drop.
 */
export function selectForCleanup(clones: CloneInfo[], rules: CleanupRules, now = Date.now()): CloneInfo[] {
  if (rules.all && rules.olderThanMs !== undefined) {
    throw new DbfastError('USAGE', '--all and --older-than contradict each other', {
      hint: '--all drops every clone of this template whatever its age; use one of them',
    });
  }
  const newestFirst = [...clones].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const candidates = newestFirst.slice(rules.keepLast ?? 0);
  if (rules.olderThanMs === undefined) return candidates;
  return candidates.filter((clone) => now - Date.parse(clone.createdAt) > rules.olderThanMs!);
}

/**
 * Drops clones by name, terminating their connections; refuses anything dbfast did not create, and
 * names that are no database at all, before dropping any.
 */
export async function dropClones(admin: pg.Client, names: string[]): Promise<string[]> {
  const clones = new Set((await listClones(admin)).map((clone) => clone.name));
  const unknown = names.filter((name) => !clones.has(name));
  if (unknown.length > 0) {
    const { rows } = await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname = ANY($1)', [unknown]);
    const existing = new Set(rows.map((row) => row.datname));
    const missing = unknown.filter((name) => !existing.has(name)).map((name) => `"${name}"`);
    const foreign = unknown.filter((name) => existing.has(name));
    const problems = [
      missing.length === 0 ? '' : missing.length === 1 ? `database ${missing[0]} does not exist` : `databases ${missing.join(', ')} do not exist`,
      foreign.length === 0 ? '' : `not a dbfast clone: ${foreign.join(', ')}`,
    ];
    throw new DbfastError('USAGE', problems.filter(Boolean).join('; '), { hint: 'dbfast list shows the databases it created' });
  }
  for (const name of names) await dropDatabase(admin, name);
  return names;
}
