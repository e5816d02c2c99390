/**
 * dbfast as a library: the same operations as the CLI.
 *
 * ```ts
 * import { openProject } from 'dbfast';
 * const dbfast = await openProject();             // finds dbfast.toml upward from cwd
 * const { url } = await dbfast.seed();            // a fresh, fully seeded database
 * await dbfast.drop(...);                         // remove clones dbfast created
 * await dbfast.close();
 * ```
 */
import type { LoadConfigOptions } from './core/config.js';
import { Project } from './core/project.js';

export type { CloneInfo } from './core/clone.js';
export type { DbfastConfig, LoadConfigOptions } from './core/config.js';
export { loadConfig } from './core/config.js';
export type { ErrorCode } from './core/errors.js';
export { DbfastError, exitCodeFor, isDbfastError } from './core/errors.js';
export { type InitOptions, type InitResult, initProject } from './core/init.js';
export { Project, type RepositoryState, type SeedOptions, type SeedResult } from './core/project.js';
export { type ScannedFile, type ScanResult, scanRepository } from './core/scan.js';
export { ensureServer, serverStatus, stopServer } from './core/server.js';
export { type ExecuteOptions, type ExecutionStats, executeFiles, type SqlFile } from './core/sql/execute.js';
export type { EnsureResult, TemplateInfo } from './core/template.js';

/** Opens the project whose dbfast.toml is found from `options.cwd` (or `options.configPath`). */
export function openProject(options: LoadConfigOptions = {}): Promise<Project> {
  return Project.open(options);
}
