/**
 * The warm pool: spare clones of a template made ahead of time, so that a seed is a rename on the
 * server instead of a copy. A spare records the OID of the template build it was copied from; it is
 * handed out only while that build is the template and the template is fresh, and dropped once a
 * rebuild replaced it. Taking one is a rename, which only one session can win: processes taking
 * spares at once each get a different one.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { type CloneMetadata, type CreateCloneOptions, createClone, type SpareMetadata } from './clone.js';
import { SUFFIXES } from './names.js';
import { withClient } from './pg/client.js';
import { dropDatabase } from './pg/databases.js';
import { lockKeys, tryAdvisoryLock } from './pg/locks.js';
import { METADATA_COLUMNS, type MetadataColumns, metadataPlace, parseMetadata, writeMetadataSql } from './pg/metadata.js';
import type { ServerTarget } from './pg/target.js';
import { quoteIdentifier as ident, quoteLiteral } from './sql/quote.js';
import {
  type CloneStrategy,
  chooseStrategy,
  SERVER_COPYING_COLUMNS,
  type ServerCopying,
  type ServerCopyingRow,
  serverCopyingFrom,
} from './strategy.js';
import { type TemplateInfo, templateFromRow } from './template.js';

export interface Spare extends SpareMetadata {
  name: string;
  place: 'setting' | 'comment';
}

/** What a seed needs in one round trip: the template, its current OID, its spares and how the server copies. */
export interface PoolView extends ServerCopying {
  template: TemplateInfo | null;
  templateOid: number | null;
  spares: Spare[];
  /** Spare names without spare metadata: copies a killed filler never finished (fillers hold the pool's lock). */
  unfinished: string[];
}

/** `<template>__p<8 hex>` (names.ts): never a name clone.ts generates (`<template>_<8 hex>`). */
const SPARE = SUFFIXES.spare;

export function spareName(template: string): string {
  return `${template}${SPARE}${randomBytes(4).toString('hex')}`;
}

function isSpareName(name: string, template: string): boolean {
  return name.startsWith(`${template}${SPARE}`) && /^[0-9a-f]{8}$/.test(name.slice(template.length + SPARE.length));
}

interface Row extends MetadataColumns {
  oid: number;
  datname: string;
}

export async function readPool(admin: pg.Client, template: string): Promise<PoolView> {
  // The server's settings ride along in the same round trip (a second result), the rows may be none.
  const [databases, server] = (await admin.query(
    `SELECT d.oid, d.datname, ${METADATA_COLUMNS} FROM pg_database d WHERE d.datname = ${quoteLiteral(template)} OR starts_with(d.datname, ${quoteLiteral(`${template}${SPARE}`)});
     SELECT ${SERVER_COPYING_COLUMNS}`,
  )) as unknown as [pg.QueryResult<Row>, pg.QueryResult<ServerCopyingRow>];
  const { rows } = databases;
  const templateRow = rows.find((row) => row.datname === template);
  const named = rows.filter((row) => isSpareName(row.datname, template));
  const spares = named.flatMap((row) => {
    const metadata = parseMetadata<SpareMetadata>(row, 'spare');
    return metadata?.template === template ? [{ ...metadata, name: row.datname, place: metadataPlace(row) }] : [];
  });
  const unfinished = named.filter((row) => !spares.some((spare) => spare.name === row.datname)).map((row) => row.datname);
  return {
    template: templateRow ? templateFromRow(templateRow) : null,
    templateOid: templateRow ? Number(templateRow.oid) : null,
    spares,
    unfinished,
    ...serverCopyingFrom(server.rows[0]!),
  };
}

/**
 * Takes a spare of the template build `templateOid` and renames it `name`, with clone metadata, in
 * one transaction; null when none is left. Spares are tried in random order so that concurrent
 * takers rarely race for the same one; the loser of a race gets "does not exist" and tries the next.
 */
export async function claimSpare(admin: pg.Client, view: PoolView, clone: { name: string; fingerprint: string }): Promise<string | null> {
  const usable = view.spares.filter((spare) => spare.templateOid === view.templateOid && spare.fingerprint === clone.fingerprint);
  for (const spare of shuffle(usable)) {
    const metadata: CloneMetadata = { kind: 'clone', template: spare.template, fingerprint: spare.fingerprint, createdAt: new Date().toISOString() };
    try {
      await admin.query(`ALTER DATABASE ${ident(spare.name)} RENAME TO ${ident(clone.name)};\n${writeMetadataSql(clone.name, metadata, spare.place)}`);
      return clone.name;
    } catch (error) {
      const code = (error as { code?: string }).code;
      // Taken by someone else, or dropped as stale meanwhile: the next one.
      if (code === UNDEFINED_DATABASE) continue;
      // The chosen name exists: the caller's ordinary path explains that.
      if (code === DUPLICATE_DATABASE) return null;
      throw error;
    }
  }
  return null;
}

const UNDEFINED_DATABASE = '3D000';
const DUPLICATE_DATABASE = '42P04';

function shuffle<T>(items: T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

export interface FillOptions extends Pick<CreateCloneOptions, 'maxConcurrent' | 'timeoutMs'> {
  template: string;
  size: number;
  /** [performance] clone_strategy: the strategy follows from it and the server (strategy.ts), read with the pool. */
  cloneStrategy: CloneStrategy | 'auto';
}

export interface FillResult {
  created: string[];
  dropped: string[];
  /** Another process was filling this pool: this call did nothing. */
  busy: boolean;
}

/**
 * Drops the template's stale spares and makes new ones until `size` are ready. One filler per
 * template at a time (a server-side lock): a second one returns at once, since the first fills for
 * both. The count is read again after each spare, so spares taken meanwhile are replaced too.
 */
export async function fillPool(target: ServerTarget, options: FillOptions): Promise<FillResult> {
  return withClient(target, async (admin) => {
    const result: FillResult = { created: [], dropped: [], busy: false };
    const filled = await tryAdvisoryLock(admin, lockKeys.pool(options.template), async () => {
      for (;;) {
        const view = await readPool(admin, options.template);
        if (view.templateOid === null) return;
        const dropped = await dropStaleSpares(admin, view);
        for (const name of view.unfinished) await dropDatabase(admin, name);
        result.dropped.push(...dropped, ...view.unfinished);
        if (view.spares.length - dropped.length >= options.size) return;
        const name = spareName(options.template);
        const { strategy } = chooseStrategy(view, options.cloneStrategy);
        await createClone(admin, { ...options, name, fingerprint: view.template!.fingerprint, spare: true, strategy });
        result.created.push(name);
      }
    });
    return filled.locked ? result : { ...result, busy: true };
  });
}

/** Spares copied from a build that is no longer the template: never handed out. */
export function staleSpares(view: PoolView): Spare[] {
  return view.spares.filter((spare) => spare.templateOid !== view.templateOid || spare.fingerprint !== view.template?.fingerprint);
}

/** Drops the stale spares; returns their names. */
async function dropStaleSpares(admin: pg.Client, view: PoolView): Promise<string[]> {
  const stale = staleSpares(view);
  for (const spare of stale) await dropDatabase(admin, spare.name);
  return stale.map((spare) => spare.name);
}

/** Drops every spare of the template; returns their names. */
export async function drainPool(admin: pg.Client, template: string): Promise<string[]> {
  const { spares } = await readPool(admin, template);
  for (const spare of spares) await dropDatabase(admin, spare.name);
  return spares.map((spare) => spare.name);
}
