/**
 * Which statements PostgreSQL refuses inside a transaction block, and which file of a deploy holds
 * one: such a file cannot share the deploy's transaction and runs as a step of its own.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { lexScript } from './lexer.js';
import { parseMetaArgs } from './meta.js';
import type { Location } from './position.js';

/** `words`: a statement's lower-cased leading words (Statement.words). */
export function refusedInTransaction(words: string[]): boolean {
  const [first, second] = words;
  // REFRESH MATERIALIZED VIEW CONCURRENTLY is the one concurrent form a transaction allows.
  if (words.includes('concurrently')) return first !== 'refresh';
  switch (first) {
    case 'vacuum':
      return true;
    case 'reindex':
      return second === 'database' || second === 'system' || second === 'schema';
    case 'cluster':
      // Without a table: every table clustered before, each in a transaction of its own.
      return words.length === 1 || (words.length === 2 && second === 'verbose');
    case 'create':
    case 'drop':
      return second === 'database' || second === 'tablespace' || second === 'subscription';
    case 'alter':
      return second === 'system' || second === 'subscription' || (second === 'database' && words.includes('tablespace'));
    case 'commit':
    case 'rollback':
      return second === 'prepared';
    case 'discard':
      return second === 'all';
    default:
      return false;
  }
}

export interface NonTransactional {
  /** The file holding the statement (an included one, or `path` itself). */
  path: string;
  location: Location;
  /** Its leading words, e.g. `create index concurrently`. */
  statement: string;
}

/** ALTER TYPE ... ADD VALUE: the value cannot be used in the transaction that added it. */
export function addsEnumValue(words: string[]): boolean {
  return words[0] === 'alter' && words[1] === 'type' && words.includes('add') && words.includes('value');
}

/** Drops a table, a schema or a column (ALTER TABLE ... DROP, but a constraint, a default or NOT NULL), or empties a table. */
function dropsData([first, second, ...rest]: string[]): boolean {
  if (first === 'truncate') return true;
  if (first === 'drop') return second === 'table' || second === 'schema';
  return first === 'alter' && second === 'table' && rest.includes('drop') && !rest.includes('constraint') && !rest.includes('default') && !rest.includes('not');
}

const LOOKED_FOR = { nonTransactional: refusedInTransaction, drop: dropsData, enumValue: addsEnumValue };

/** The first statement of each kind a migration plan asks about, in a file and the files it includes by a literal path. */
export type FileStatements = Record<keyof typeof LOOKED_FOR, NonTransactional | null>;

/**
 * Reads the file at `path` once (and each file it includes by a literal path, once) for the first
 * statement that cannot run in a transaction block, that drops data, and that adds an enum value;
 * null where there is none, or where a file cannot be read this way (running it then tells). Read
 * as latin1: the keywords looked for are ASCII in every encoding.
 */
export async function scanStatements(path: string): Promise<FileStatements> {
  const found: FileStatements = { nonTransactional: null, drop: null, enumValue: null };
  await walk(path, found, new Set());
  return found;
}

async function walk(path: string, found: FileStatements, seen: Set<string>): Promise<void> {
  if (seen.has(path)) return;
  seen.add(path);
  const text = await readFile(path, 'latin1').catch(() => null);
  if (text === null) return;
  const kinds = Object.keys(LOOKED_FOR) as (keyof FileStatements)[];
  try {
    for (const segment of lexScript(text, { file: path })) {
      if (segment.kind === 'statement') {
        for (const kind of kinds) {
          if (found[kind] === null && LOOKED_FOR[kind](segment.words)) found[kind] = { path, location: segment.location, statement: segment.words.slice(0, 3).join(' ') };
        }
      } else if (/^(i|ir|include|include_relative)$/.test(segment.name)) {
        const included = parseMetaArgs(segment.args, new Map())[0];
        if (included && !included.includes(':')) await walk(resolve(dirname(path), included), found, seen);
      }
      if (kinds.every((kind) => found[kind] !== null)) return;
    }
  } catch {
    // Not lexable this way: what was found so far stands.
  }
}
