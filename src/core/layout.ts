/** Where a project keeps its SQL repository, for `dbfast init`: looked for, never guessed between. */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { DbfastError } from './errors.js';
import { compareExecutionOrder } from './scan.js';

/** Folders that conventionally hold a project's SQL, in order of preference when none is found. */
const REPOSITORY_FOLDERS = ['db', 'sql', 'database', 'migrations', 'schema'];

const NUMBERED = /^\d+_/;

/** What a folder may hold that makes it look like the repository, by index: the higher, the more telling. */
const EVIDENCE = ['nothing', '.sql files', 'numbered folders'] as const;

/**
 * The repository folder relative to `dir`: `.` when numbered folders or .sql files sit directly in `dir`, else the
 * one of db/, sql/, database/, migrations/, schema/ that has numbered folders or .sql files (at any depth). Numbered
 * folders count more than .sql files; two places with the same evidence are refused (USAGE). Nothing found: `db`.
 */
export async function findRepositoryFolder(dir: string): Promise<string> {
  const places = await Promise.all(
    ['.', ...REPOSITORY_FOLDERS].map(async (name) => ({ name, evidence: await evidenceIn(path.join(dir, name), name !== '.') })),
  );
  const strongest = Math.max(...places.map((place) => place.evidence));
  if (strongest === 0) return REPOSITORY_FOLDERS[0]!;
  const found = places.filter((place) => place.evidence === strongest).map((place) => place.name);
  if (found.length === 1) return found[0]!;
  const where = found.map((name) => (name === '.' ? './' : `${name}/`)).join(' and in ');
  throw new DbfastError('USAGE', `cannot tell where the SQL repository is: ${EVIDENCE[strongest]} in ${where}`, {
    hint: `choose one with --repo-dir, e.g. --repo-dir ${found[0]}`,
  });
}

/** Numbered directories (`0_schema`, `10_fixes`) directly in `folder`, in build order; none when it does not exist. */
export async function findNumberedDirectories(folder: string): Promise<string[]> {
  const numbered = (await namesIn(folder)).filter((name) => NUMBERED.test(name));
  // stat, not the dirent type, so that symlinked directories count like the build will count them.
  const isDirectory = await Promise.all(
    numbered.map((name) => stat(path.join(folder, name)).then((entry) => entry.isDirectory(), () => false)),
  );
  return numbered.filter((_, index) => isDirectory[index]).sort(compareExecutionOrder);
}

/** An index into EVIDENCE. */
async function evidenceIn(folder: string, deep: boolean): Promise<number> {
  if ((await findNumberedDirectories(folder)).length > 0) return EVIDENCE.indexOf('numbered folders');
  // Not deep at the project's top, where node_modules and the like keep SQL of their own.
  const names = await namesIn(folder, deep);
  return EVIDENCE.indexOf(names.some((name) => name.endsWith('.sql')) ? '.sql files' : 'nothing');
}

async function namesIn(folder: string, recursive = false): Promise<string[]> {
  return readdir(folder, { recursive }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return [];
    throw error;
  });
}
