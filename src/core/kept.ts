/**
 * Kept templates: with [performance] keep_templates = N, a rebuild keeps the template it replaces as
 * `<template>__k<8 hex>`, closed to connections and marked kind `kept` (so nothing takes it for the
 * template), instead of dropping it. When the files come back to a kept template's fingerprint (a
 * branch switched back), ensureTemplate swaps it in by rename instead of building. Kept templates
 * are made, swapped in and pruned only under the template's build lock.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { isFresh, type ProjectFolders } from './freshness.js';
import { SUFFIXES } from './names.js';
import { dropDatabase } from './pg/databases.js';
import { METADATA_COLUMNS, type MetadataColumns, parseMetadata } from './pg/metadata.js';
import type { TemplateInfo, TemplateMetadata } from './template-metadata.js';

export interface KeptMetadata extends Omit<TemplateMetadata, 'kind'> {
  kind: 'kept';
  template: string;
  /** When a rebuild replaced it: the oldest go first. */
  keptAt: string;
}

export interface KeptTemplate extends KeptMetadata {
  name: string;
}

export function keptName(template: string): string {
  return `${template}${SUFFIXES.kept}${randomBytes(4).toString('hex')}`;
}

/** The metadata of `template`, the current template, once a rebuild keeps it. */
export function keptMetadata(template: TemplateInfo): KeptMetadata {
  const { name, sizeBytes, ...built } = template;
  return { ...built, kind: 'kept', template: name, keptAt: new Date().toISOString() };
}

/** The metadata of a kept template swapped back in as the template. */
export function restoredMetadata(kept: KeptTemplate): TemplateMetadata {
  const { name, template, keptAt, ...built } = kept;
  return { ...built, kind: 'template' };
}

/** The template's kept templates, oldest first. */
export async function listKept(admin: pg.Client, template: string): Promise<KeptTemplate[]> {
  const prefix = `${template}${SUFFIXES.kept}`;
  const { rows } = await admin.query<MetadataColumns & { datname: string }>(
    `SELECT d.datname, ${METADATA_COLUMNS} FROM pg_database d WHERE starts_with(d.datname, $1)`,
    [prefix],
  );
  const kept = rows.flatMap((row) => {
    const metadata = /^[0-9a-f]{8}$/.test(row.datname.slice(prefix.length)) ? parseMetadata<KeptMetadata>(row, 'kept') : null;
    return metadata?.template === template ? [{ ...metadata, name: row.datname }] : [];
  });
  return kept.sort((a, b) => a.keptAt.localeCompare(b.keptAt));
}

/** The newest kept template built from the files with `fingerprint` and from every file they include as they are now. */
export async function reusableKept(admin: pg.Client, template: string, fingerprint: string, folders: ProjectFolders): Promise<KeptTemplate | null> {
  for (const kept of (await listKept(admin, template)).reverse()) {
    // The template's stat cache of included files serves its kept builds too.
    if (await isFresh({ ...kept, name: template }, fingerprint, folders)) return kept;
  }
  return null;
}

/** The oldest kept templates beyond `keep`, of a list oldest first. */
export function beyondKeep(kept: KeptTemplate[], keep: number): KeptTemplate[] {
  return kept.slice(0, Math.max(0, kept.length - keep));
}

/** Drops the oldest kept templates beyond `keep`; returns their names. */
export async function pruneKept(admin: pg.Client, template: string, keep: number): Promise<string[]> {
  const dropped = beyondKeep(await listKept(admin, template), keep);
  for (const { name } of dropped) await dropDatabase(admin, name);
  return dropped.map(({ name }) => name);
}
