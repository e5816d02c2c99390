/**
 * The project's SQL files as an environment sees them: what it selects from the scan, in
 * execution order, and the fingerprint of that selection (its rules included).
 */
import { join, posix } from 'node:path';
import type { DbfastConfig } from './config/index.js';
import type { EnvironmentSelection } from './environments.js';
import { selectFiles } from './environments.js';
import { relativePosix } from './files.js';
import { computeFingerprint } from './fingerprint.js';
import { type Layer, layersOf } from './layers.js';
import { type ScannedFile, type ScanResult, scanRepository } from './scan.js';
import type { SqlFile } from './sql/execute.js';

export interface RepositoryState {
  /** Every repository file (after [repository] patterns). */
  scan: ScanResult;
  /** The environment's files, in execution order. */
  selected: ScannedFile[];
  /** The files to run, with paths shown relative to the project folder (`db/0_schema/01.sql`). */
  files: SqlFile[];
  fingerprint: string;
  /** The files by top-level folder, each with the fingerprint of everything up to it (layer checkpoints). */
  layers: Layer[];
}

/** Every repository file (after [repository] patterns), through the stat cache. */
export function scanProjectRepository(config: DbfastConfig): Promise<ScanResult> {
  const { repository, stateDir, projectDir } = config;
  return scanRepository({
    root: repository.path,
    include: repository.include,
    exclude: repository.exclude,
    cachePath: join(stateDir, 'scan-cache.tsv'),
    shownFrom: projectDir,
  });
}

/** What `environment` selects from `scan`; its rules are part of the fingerprint. */
export function repositoryState(config: DbfastConfig, environment: EnvironmentSelection, scan: ScanResult): RepositoryState {
  const { repository, projectDir } = config;
  const selected = environment.settings ? selectFiles(scan.files, environment.settings) : scan.files;
  const shownRoot = relativePosix(projectDir, scan.root);
  const files = selected.map((file) => ({
    absolutePath: file.absolutePath,
    relativePath: shownRoot ? posix.join(shownRoot, file.relativePath) : file.relativePath,
    hash: file.hash,
  }));
  const selection = { include: repository.include, exclude: repository.exclude, environment: environment.settings };
  const layers = layersOf(selected, files, selection);
  return { scan, selected, files, fingerprint: layers.at(-1)?.fingerprint ?? computeFingerprint({ files: selected, selection }), layers };
}
