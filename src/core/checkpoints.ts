/**
 * Layer checkpoints: after each layer but the last, a build copies its scratch database to
 * `<template>__c<layer number>`, recording the fingerprint of the files up to that layer and the
 * files they included. A later build starts from the last checkpoint that still matches, instead of
 * from template0. Checkpoints are made and used only under the template's build lock.
 */
import type pg from 'pg';
import type { ExecutionStats } from './sql/execute.js';
import { changedIncludes, type IncludedFile, type ProjectFolders } from './freshness.js';
import type { Layer } from './layers.js';
import { SUFFIXES } from './names.js';
import { createDatabase, dropDatabase } from './pg/databases.js';
import { METADATA_COLUMNS, type MetadataColumns, parseMetadata, writableMetadataPlace, writeMetadataSql } from './pg/metadata.js';
import { copyPropertiesSql, type DatabaseProperties, PROPERTIES_COLUMNS } from './properties.js';
import { quoteIdentifier as ident } from './sql/quote.js';

export type BuildCounts = Pick<ExecutionStats, 'files' | 'statements' | 'rowsCopied'>;

export interface CheckpointMetadata extends BuildCounts {
  kind: 'checkpoint';
  template: string;
  /** The layer's top-level folder. */
  layer: string;
  fingerprint: string;
  /** What the files up to this layer included, as template metadata records it (freshness.ts). */
  includes: IncludedFile[];
  createdAt: string;
}

export interface Checkpoint extends CheckpointMetadata {
  name: string;
  /** Its position among the layers. */
  index: number;
}

export function checkpointName(template: string, index: number): string {
  return `${template}${SUFFIXES.checkpoint}${index}`;
}

interface Row extends MetadataColumns {
  datname: string;
}

export async function listCheckpoints(admin: pg.Client, template: string): Promise<Checkpoint[]> {
  const prefix = `${template}${SUFFIXES.checkpoint}`;
  const { rows } = await admin.query<Row>(`SELECT d.datname, ${METADATA_COLUMNS} FROM pg_database d WHERE starts_with(d.datname, $1)`, [prefix]);
  return rows.flatMap((row) => {
    const index = row.datname.slice(prefix.length);
    const metadata = /^\d{1,8}$/.test(index) ? parseMetadata<CheckpointMetadata>(row, 'checkpoint') : null;
    return metadata?.template === template ? [{ ...metadata, name: row.datname, index: Number(index) }] : [];
  });
}

/**
 * The last checkpoint a build of `layers` can start from: made after the same files up to its layer,
 * and every file they included still as they were. Never the last layer's (that is the template).
 */
export async function reusableCheckpoint(admin: pg.Client, template: string, layers: Layer[], folders: ProjectFolders): Promise<Checkpoint | null> {
  const byIndex = new Map((await listCheckpoints(admin, template)).map((checkpoint) => [checkpoint.index, checkpoint]));
  for (let index = layers.length - 2; index >= 0; index--) {
    const checkpoint = byIndex.get(index);
    if (checkpoint?.fingerprint !== layers[index]!.fingerprint || checkpoint.layer !== layers[index]!.name) continue;
    if ((await changedIncludes(checkpoint, folders)).length === 0) return checkpoint;
  }
  return null;
}

/**
 * `CREATE DATABASE name TEMPLATE source` with the source's database properties, which a copy does
 * not carry (properties.ts): settings and privileges the files gave the database stay through a checkpoint.
 */
export async function copyDatabase(admin: pg.Client, source: string, name: string, strategy?: 'file_copy' | 'wal_log'): Promise<void> {
  const { rows } = await admin.query<DatabaseProperties>(`SELECT ${PROPERTIES_COLUMNS} FROM pg_database d WHERE d.datname = $1`, [source]);
  await createDatabase(admin, name, { template: source, strategy });
  const statements = copyPropertiesSql(name, rows[0]!);
  if (statements.length > 0) await admin.query(statements.join(';\n'));
}

/** Replaces checkpoint `index` of the template with a copy of `built`, the scratch database after that layer. */
export async function saveCheckpoint(
  admin: pg.Client,
  built: string,
  checkpoint: Omit<CheckpointMetadata, 'kind' | 'createdAt'> & { index: number },
  strategy?: 'file_copy' | 'wal_log',
): Promise<void> {
  const { index, ...fields } = checkpoint;
  const name = checkpointName(checkpoint.template, index);
  await dropDatabase(admin, name);
  await copyDatabase(admin, built, name, strategy);
  const metadata: CheckpointMetadata = { kind: 'checkpoint', ...fields, createdAt: new Date().toISOString() };
  // Closed to connections: a session on a checkpoint would make the next build's copy of it fail.
  const place = await writableMetadataPlace(admin);
  await admin.query(`ALTER DATABASE ${ident(name)} ALLOW_CONNECTIONS false;\n${writeMetadataSql(name, metadata, place)}`);
}

/** Drops the template's checkpoints from layer `from` on (all by default); returns their names. */
export async function dropCheckpoints(admin: pg.Client, template: string, from = 0): Promise<string[]> {
  const dropped = (await listCheckpoints(admin, template)).filter((checkpoint) => checkpoint.index >= from);
  for (const checkpoint of dropped) await dropDatabase(admin, checkpoint.name);
  return dropped.map((checkpoint) => checkpoint.name);
}
