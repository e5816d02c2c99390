import { DbfastError } from './errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `500ms`, `90s`, `30m`, `12h`, `7d`, `2w` to milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|[smhdw])$/.exec(text.trim());
  if (!match) throw new DbfastError('USAGE', `invalid duration "${text}"`, { hint: 'use a number and a unit: 30m, 12h, 7d, 2w' });
  return Number(match[1]) * UNITS[match[2]!]!;
}
