import { expect } from 'vitest';
import { DbfastError } from '../../src/core/errors.js';

/** The DbfastError `promise` rejects with; fails the test when it resolves or rejects with anything else. */
export async function failure(promise: Promise<unknown>): Promise<DbfastError> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(DbfastError);
  return error as DbfastError;
}
