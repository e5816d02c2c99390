import type pg from 'pg';

/** Runs `work` in a transaction on `client`: committed when it returns, rolled back when it throws. */
export async function withTransaction<T>(client: pg.Client, work: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await work();
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}

/**
 * Runs `work`, then undoes whatever it changed, SET LOCAL included: in a transaction of its own,
 * or in a savepoint when `client` is in a transaction already (which must go on, uncommitted).
 */
export async function withRolledBack<T>(client: pg.Client, work: () => Promise<T>): Promise<T> {
  const nested = client.getTransactionStatus() !== 'I';
  const undo = () => client.query(nested ? 'ROLLBACK TO SAVEPOINT dbfast_rolled_back; RELEASE SAVEPOINT dbfast_rolled_back' : 'ROLLBACK');
  await client.query(nested ? 'SAVEPOINT dbfast_rolled_back' : 'BEGIN');
  let result: T;
  try {
    result = await work();
  } catch (error) {
    // The failure says more than a failed undo would (the connection may be gone).
    await undo().catch(() => {});
    throw error;
  }
  await undo();
  return result;
}
