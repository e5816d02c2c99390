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

/**
 * The first statement of the file at `path`, or of a file it includes by a literal path, that
 * cannot run in a transaction block; null when there is none (or the file cannot be read this
 * way: running it then tells).
 */
export function firstNonTransactional(path: string): Promise<NonTransactional | null> {
  return firstStatement(path, refusedInTransaction);
}

/** Whether the file (or one it includes) adds an enum value, which the same transaction cannot use. */
export async function addsEnumValue(path: string): Promise<boolean> {
  return (await firstStatement(path, (words) => words[0] === 'alter' && words[1] === 'type' && words.includes('add') && words.includes('value'))) !== null;
}

/** The first statement that drops a table, a schema or a column (ALTER TABLE ... DROP, but a constraint), or empties a table. */
export function firstDrop(path: string): Promise<NonTransactional | null> {
  return firstStatement(path, ([first, second, ...rest]) => {
    if (first === 'truncate') return true;
    if (first === 'drop') return second === 'table' || second === 'schema';
    return first === 'alter' && second === 'table' && rest.includes('drop') && !rest.includes('constraint') && !rest.includes('default') && !rest.includes('not');
  });
}

/** Read as latin1: the keywords looked for are ASCII in every encoding. */
async function firstStatement(path: string, matches: (words: string[]) => boolean, seen = new Set<string>()): Promise<NonTransactional | null> {
  if (seen.has(path)) return null;
  seen.add(path);
  const text = await readFile(path, 'latin1').catch(() => null);
  if (text === null) return null;
  try {
    for (const segment of lexScript(text, { file: path })) {
      if (segment.kind === 'statement') {
        if (matches(segment.words)) return { path, location: segment.location, statement: segment.words.slice(0, 3).join(' ') };
      } else if (/^(i|ir|include|include_relative)$/.test(segment.name)) {
        const included = parseMetaArgs(segment.args, new Map())[0];
        const found = included && !included.includes(':') ? await firstStatement(resolve(dirname(path), included), matches, seen) : null;
        if (found) return found;
      }
    }
  } catch {
    return null;
  }
  return null;
}
