import { DbfastError } from './errors.js';

/** Powers of 1024, as formatBytes and pg_size_pretty print them. */
const UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3, tb: 1024 ** 4 };

export const SIZE_PATTERN = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb)$/i;

/** `500MB`, `20GB`, `1.5 TB` to bytes. */
export function parseSize(text: string): number {
  const match = SIZE_PATTERN.exec(text.trim());
  if (!match) throw new DbfastError('USAGE', `invalid size "${text}"`, { hint: 'use a number and a unit: 500MB, 20GB, 1TB' });
  return Math.round(Number(match[1]) * UNITS[match[2]!.toLowerCase()]!);
}

/** `8.1 MB`: what parseSize reads back. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
