/**
 * The state folder (`.dbfast` beside dbfast.toml, or DBFAST_STATE_DIR): creating a folder in it,
 * and saying which folder refused and why when that is impossible.
 */
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DbfastError } from './errors.js';
import { makeDirectory } from './files.js';

export async function makeStateFolder(dir: string, stateDir: string, stateDirFromEnv = false): Promise<void> {
  try {
    await makeDirectory(dir);
  } catch (error) {
    const origin = stateDirFromEnv ? ' (DBFAST_STATE_DIR)' : '';
    throw new DbfastError('STATE_DIR_UNUSABLE', `cannot use the state folder ${stateDir}${origin}: ${await reason(error as NodeJS.ErrnoException, dir)}`, {
      hint: stateDirFromEnv
        ? 'set DBFAST_STATE_DIR to a folder you can write'
        : 'the state folder is .dbfast in the project folder by default; make that writable, or set DBFAST_STATE_DIR to a folder you can write',
      cause: error,
    });
  }
}

async function reason(error: NodeJS.ErrnoException, dir: string): Promise<string> {
  const path = error.path ?? dir;
  const parent = dirname(path);
  switch (error.code) {
    case 'EACCES':
      return `no write permission in ${parent}`;
    case 'EPERM':
    case 'ENOENT':
      // ENOENT with an existing parent: /proc answers so.
      return `${parent} does not allow creating folders`;
    case 'EROFS':
      return `${parent} is on a read-only file system`;
    case 'EEXIST':
      return `${path} exists and is not a folder`;
    case 'ENOTDIR':
      return `${await fileOnTheWay(path)} is a file, not a folder`;
    default:
      return error.message;
  }
}

/** The nearest ancestor of `path` that exists: a file, when mkdir said ENOTDIR. */
async function fileOnTheWay(path: string): Promise<string> {
  for (let candidate = dirname(path); ; candidate = dirname(candidate)) {
    const found = await stat(candidate).then(
      () => true,
      () => false,
    );
    if (found || dirname(candidate) === candidate) return candidate;
  }
}
