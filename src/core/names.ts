import { DbfastError } from './errors.js';

/** PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN - 1); dbfast refuses instead. */
const MAX_NAME_BYTES = 63;

/** Template names: plain lowercase identifiers, so they never need quoting in messages or patterns. */
export const TEMPLATE_NAME_PATTERN = /^[a-z_][a-z0-9_]*$/;

/** A build's scratch database is `<template>__b` + 8 hex digits: the template name must leave room. */
export const MAX_TEMPLATE_NAME_BYTES = MAX_NAME_BYTES - '__b'.length - 8;

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
