/**
 * `[validation]`: checks a freshly built database before it becomes the template, or a deployed
 * one before it is swapped in or committed. Every problem is collected, so one failure names
 * everything that is missing. Test queries are rolled back: validation never changes a database.
 */
import type pg from 'pg';
import type { ValidationSettings } from './config/index.js';
import { DbfastError } from './errors.js';
import { withRolledBack } from './pg/transaction.js';
import { plural } from './plural.js';

export async function validateDatabase(client: pg.Client, settings: ValidationSettings): Promise<void> {
  const problems: string[] = [];
  for (const table of settings.requiredTables) {
    const { rows } = await client.query('SELECT to_regclass($1) IS NOT NULL AS found', [table]);
    if (!rows[0].found) problems.push(`missing table ${table}`);
  }
  for (const routine of settings.requiredFunctions) {
    if (!(await routineExists(client, routine))) problems.push(`missing function ${routine}`);
  }
  for (const { query, minExpectedResults } of settings.testQueries) {
    const rows = await withRolledBack(client, () => client.query(query)).then(
      (result) => result.rowCount ?? result.rows.length,
      (error: Error) => {
        problems.push(`test query failed: ${query}: ${error.message}`);
        return null;
      },
    );
    if (rows !== null && rows < minExpectedResults) {
      problems.push(`test query returned ${plural(rows, 'row')}, expected at least ${minExpectedResults}: ${query}`);
    }
  }
  if (problems.length > 0) {
    throw new DbfastError('VALIDATION_FAILED', `template validation failed: ${problems.join('; ')}`, {
      hint: 'the previous template was kept; fix the SQL files or [validation] in dbfast.toml',
    });
  }
}

/** `name`, `schema.name` or a signature such as `add(int, int)`. */
async function routineExists(client: pg.Client, routine: string): Promise<boolean> {
  if (routine.includes('(')) {
    const { rows } = await client.query('SELECT to_regprocedure($1) IS NOT NULL AS found', [routine]);
    return rows[0].found;
  }
  const [schema, name] = routine.includes('.') ? routine.split('.', 2) : [null, routine];
  const { rows } = await client.query(
    `SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE p.proname = $2 AND ($1::text IS NULL OR n.nspname = $1) LIMIT 1`,
    [schema, name],
  );
  return rows.length > 0;
}
