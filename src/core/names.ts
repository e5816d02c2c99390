import path from 'node:path';
import { DbfastError } from './errors.js';

/** Environments named production or prod (any case) get production safety without further configuration. */
export function isProductionName(name: string): boolean {
  return /^(production|prod)$/i.test(name);
}

/** PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN - 1); dbfast refuses instead. */
const MAX_NAME_BYTES = 63;

/** Template names: plain lowercase identifiers, so they never need quoting in messages or patterns. */
const TEMPLATE_NAME_PATTERN = /^[a-z_][a-z0-9_]*$/;

/**
 * The databases dbfast makes for a template are named `<template><suffix><id>`: a build's scratch
 * database, a retired template (template.ts), a kept previous template (kept.ts) and a pool spare
 * (pool.ts) with 8 hex digits, a layer checkpoint (checkpoints.ts) with the layer's number. Clones append `_` + 8 hex digits (clone.ts).
 */
export const SUFFIXES = { building: '__b', retired: '__o', kept: '__k', spare: '__p', checkpoint: '__c' } as const;

/** A database dbfast made for `template` besides the template and its clones: scratch, retired, kept, spare or checkpoint. */
export function isDerivedName(name: string, template: string): boolean {
  if (!name.startsWith(template)) return false;
  const { building, retired, kept, spare, checkpoint } = SUFFIXES;
  return new RegExp(`^(?:(?:${building}|${retired}|${kept}|${spare})[0-9a-f]{8}|${checkpoint}\\d{1,8})$`).test(name.slice(template.length));
}

/** The longest suffix is 11 bytes: `__b` + 8 hex digits. */
const MAX_TEMPLATE_NAME_BYTES = MAX_NAME_BYTES - '__b'.length - 8;

/** Why `name` cannot be a template name (to follow the name or key it is about), or null when it can. */
export function templateNameProblem(name: string): string | null {
  if (!TEMPLATE_NAME_PATTERN.test(name)) {
    return 'must be a lowercase identifier (a-z, 0-9 and _, not starting with a digit)';
  }
  // ASCII only by now, so characters and bytes coincide.
  if (name.length > MAX_TEMPLATE_NAME_BYTES) {
    const appended = MAX_NAME_BYTES - MAX_TEMPLATE_NAME_BYTES;
    return `is longer than ${MAX_TEMPLATE_NAME_BYTES} bytes: dbfast appends up to ${appended} to it, within PostgreSQL's ${MAX_NAME_BYTES}`;
  }
  return null;
}

/** `<base>_<suffix>`, with `base` shortened so that the result stays within the template name limit. */
export function deriveTemplateName(base: string, suffix: string): string {
  const room = Math.max(0, MAX_TEMPLATE_NAME_BYTES - 1 - Buffer.byteLength(suffix));
  return `${base.slice(0, room).replace(/_+$/, '')}_${suffix}`;
}

/** `<slug of the folder name>_template`, always a valid template name. */
export function defaultTemplateName(projectDir: string): string {
  const slug = path
    .basename(path.resolve(projectDir))
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/_+/g, '_')
    .replace(/^_|_$/g, '');
  if (slug === '') return 'dbfast_template';
  return deriveTemplateName(/^[0-9]/.test(slug) ? `_${slug}` : slug, 'template');
}

export function validateDatabaseName(name: string, what = 'database name'): string {
  if (name.length === 0) throw new DbfastError('USAGE', `${what} is empty`);
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
    throw new DbfastError('USAGE', `${what} "${name}" is longer than ${MAX_NAME_BYTES} bytes`);
  }
  if (!/^[\p{L}\p{N}_$-]+$/u.test(name)) {
    throw new DbfastError('USAGE', `${what} "${name}" may contain only letters, digits, _, $ and -`);
  }
  return name;
}

/** `<base><suffix>` within PostgreSQL's 63 bytes: `base` is cut at a character boundary to make room. */
export function nameWithSuffix(base: string, suffix: string): string {
  let room = MAX_NAME_BYTES - Buffer.byteLength(suffix);
  let cut = '';
  for (const character of base) {
    room -= Buffer.byteLength(character);
    if (room < 0) break;
    cut += character;
  }
  return `${cut}${suffix}`;
}
