/**
 * The project's SQL files as an environment sees them: what it selects from the scan of its repositories, in
 * execution order (repository after repository, as configured), and the fingerprint of that selection (its
 * rules included).
 *
 * `[repository]` is one unnamed repository: its files are known by their path inside it (`0_schema/01.sql`)
 * and shown from the project folder (`db/0_schema/01.sql`). Each of `[[repositories]]` has a name, which
 * starts the path its files are known and shown by (`shared/0_schema/01.sql`): environment rules match
 * those paths, and two repositories may hold the same path without their files being confused.
 */
import { isAbsolute, join, posix } from 'node:path';
import type { DbfastConfig, RepositorySettings } from './config/index.js';
import type { EnvironmentSelection } from './environments.js';
import { selectFiles } from './environments.js';
import { DbfastError, isDbfastError } from './errors.js';
import { relativePosix } from './files.js';
import { computeFingerprint } from './fingerprint.js';
import { type Layer, layersOf } from './layers.js';
import { type ScannedFile, type ScanResult, scanRepository } from './scan.js';
import type { SqlFile } from './sql/execute.js';

/** The files of every repository (after its patterns): repository after repository, each in execution order. */
export type ProjectScan = Pick<ScanResult, 'files' | 'hashedFiles'>;

export interface RepositoryState {
  /** Every repository file (after the repositories' patterns). */
  scan: ProjectScan;
  /** The environment's files, in execution order. */
  selected: ScannedFile[];
  /** The files to run, with their paths as users see them (see `pathShower`). */
  files: SqlFile[];
  fingerprint: string;
  /** The files by top-level folder, each with the fingerprint of everything up to it (layer checkpoints). */
  layers: Layer[];
}

/** One repository and how many files it has. */
export interface RepositoryFiles {
  /** Absent for `[repository]`. */
  name?: string;
  /** Its folder from the project folder (`.` for the project folder itself). */
  path: string;
  /** Its files, after its patterns. */
  files: number;
  /** By configured environment: how many of its files the environment selects. */
  environments: Record<string, number>;
}

/** Every repository file (after its patterns), through the stat cache. */
export async function scanProjectRepository(config: DbfastConfig): Promise<ProjectScan> {
  const scans = await Promise.allSettled(config.repositories.map((repository, index) => scanOne(config, repository, index)));
  // Every scan has ended: the first repository that failed, in configured order, is the one reported.
  const results = scans.map((scan) => {
    if (scan.status === 'rejected') throw scan.reason;
    return scan.value;
  });
  return { files: results.flatMap((result) => result.files), hashedFiles: results.reduce((sum, result) => sum + result.hashedFiles, 0) };
}

function scanOne(config: DbfastConfig, repository: RepositorySettings, index: number): Promise<ScanResult> {
  const { name } = repository;
  const scan = scanRepository({
    root: repository.path,
    include: repository.include,
    exclude: repository.exclude,
    // One cache per repository: a cache holds the files of one scan only.
    cachePath: join(config.stateDir, name === undefined ? 'scan-cache.tsv' : `scan-cache.${name}.tsv`),
    shownFrom: config.projectDir,
    ...(name === undefined ? {} : { name }),
  });
  if (name === undefined) return scan;
  return scan.catch((error: unknown) => {
    if (!isDbfastError(error, 'REPOSITORY_NOT_FOUND')) throw error;
    throw new DbfastError('REPOSITORY_NOT_FOUND', `${repositoryLabel(repository, index)}: ${error.message}`, {
      hint: `create it, or set ${repositoryKey(index)}.path in dbfast.toml`,
      cause: error,
    });
  });
}

/** `repositories[1] (app)`: how messages name one of `[[repositories]]`. */
function repositoryLabel(repository: RepositorySettings, index: number): string {
  return `${repositoryKey(index)} (${repository.name})`;
}

function repositoryKey(index: number): string {
  return `repositories[${index}]`;
}

/** What `environment` selects from `scan`; its rules are part of the fingerprint. */
export function repositoryState(config: DbfastConfig, environment: EnvironmentSelection, scan: ProjectScan): RepositoryState {
  const selected = selectedFiles(environment, scan);
  const show = pathShower(config);
  const files = selected.map((file) => ({ absolutePath: file.absolutePath, relativePath: show(file.relativePath), hash: file.hash }));
  const selection = selectionSettings(config, environment);
  const layers = layersOf(selected, files, selection);
  return { scan, selected, files, fingerprint: layers.at(-1)?.fingerprint ?? computeFingerprint({ files: selected, selection }), layers };
}

function selectedFiles(environment: EnvironmentSelection, scan: ProjectScan): ScannedFile[] {
  return environment.settings ? selectFiles(scan.files, environment.settings) : scan.files;
}

/** The settings that decide which files are selected, as the fingerprint covers them. */
function selectionSettings(config: DbfastConfig, environment: EnvironmentSelection): unknown {
  const [first] = config.repositories;
  // Exactly what it was before [[repositories]] existed: a [repository] project's templates stay fresh.
  if (first!.name === undefined) return { include: first!.include, exclude: first!.exclude, environment: environment.settings };
  const repositories = config.repositories.map(({ name, include, exclude }) => ({ name, include, exclude }));
  return { repositories, environment: environment.settings };
}

/**
 * A scanned path (ScannedFile.relativePath) as errors, progress and reports show it: from the project folder
 * for `[repository]` (`db/0_schema/01.sql`), as it is for `[[repositories]]`, whose paths start with the name.
 */
export function pathShower(config: DbfastConfig): (relativePath: string) => string {
  const [first] = config.repositories;
  const shownRoot = first!.name === undefined ? relativePosix(config.projectDir, first!.path) : '';
  return (relativePath) => (shownRoot ? posix.join(shownRoot, relativePath) : relativePath);
}

/**
 * A file on disk named as the scan names files: from the repository it is in. A file in none is named from
 * `[repository]` (`../inc/data.sql`), or with `[[repositories]]` from the project folder.
 */
export function scannedPath(config: DbfastConfig, absolutePath: string): string {
  const [first] = config.repositories;
  if (first!.name === undefined) return relativePosix(first!.path, absolutePath);
  for (const { name, path } of config.repositories) {
    const inside = relativePosix(path, absolutePath);
    if (inside !== '..' && !inside.startsWith('../') && !isAbsolute(inside)) return `${name}/${inside}`;
  }
  return relativePosix(config.projectDir, absolutePath);
}

/** Each repository with its file count, and what each of `environments` selects from it. */
export function repositoryFiles(config: DbfastConfig, scan: ProjectScan, environments: EnvironmentSelection[]): RepositoryFiles[] {
  const selections = environments.map((environment) => [environment.name!, selectedFiles(environment, scan)] as const);
  return config.repositories.map(({ name, path }) => {
    const count = (files: ScannedFile[]) => files.filter((file) => file.repository === name).length;
    return {
      ...(name === undefined ? {} : { name }),
      path: shownFolder(config, path),
      files: count(scan.files),
      environments: Object.fromEntries(selections.map(([environment, selected]) => [environment, count(selected)])),
    };
  });
}

function shownFolder(config: DbfastConfig, path: string): string {
  return relativePosix(config.projectDir, path) || '.';
}

/**
 * Throws REPOSITORY_EMPTY when a build would have nothing to run: one of `[[repositories]]` has no file (a
 * wrong path or pattern, most likely), or the environment selects none.
 */
export function requireFiles(config: DbfastConfig, environment: EnvironmentSelection, state: RepositoryState): void {
  const present = new Set(state.scan.files.map((file) => file.repository));
  config.repositories.forEach((repository, index) => {
    if (repository.name === undefined || present.has(repository.name)) return;
    throw new DbfastError('REPOSITORY_EMPTY', `${repositoryLabel(repository, index)}: no SQL files in ${shownFolder(config, repository.path)}`, {
      hint: `nothing matches ${repository.include.join(', ')}; add files or change ${repositoryKey(index)}.include_patterns`,
    });
  });
  if (state.files.length > 0) return;
  const where = config.repositories.map((repository) => shownFolder(config, repository.path)).join(', ');
  const { name } = environment;
  throw new DbfastError('REPOSITORY_EMPTY', name ? `environment ${name} selects no SQL files in ${where}` : `no SQL files in ${where}`, {
    hint: name
      ? `check [environments.${name}] in dbfast.toml (dbfast validate-env ${name})`
      : `nothing matches ${config.repositories[0]!.include.join(', ')}; add files or change [repository] include_patterns`,
  });
}
