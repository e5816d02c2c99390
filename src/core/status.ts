/**
 * `dbfast status`: the server, the repository, the template and the clones in one object. A
 * stopped embedded server is reported, not started.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type pg from 'pg';
import { listClones } from './clone.js';
import type { DbfastConfig } from './config/index.js';
import type { EnvironmentSelection } from './environments.js';
import { isDbfastError } from './errors.js';
import { relativePosix, writeFileAtomic } from './files.js';
import { changedIncludes, type IncludedFile, isFresh } from './freshness.js';
import type { Project, RepositoryState } from './project.js';
import type { ScanResult } from './scan.js';
import { readTemplate, type TemplateInfo } from './template.js';

export interface ChangedFiles {
  added: string[];
  removed: string[];
  modified: string[];
}

export interface EnvironmentStatus {
  name: string;
  template: string;
  files: number;
  /** unknown: the server could not be asked. */
  state: 'missing' | 'fresh' | 'stale' | 'unknown';
  builtAt: string | null;
}

export interface ProjectStatus {
  server: { embedded: boolean; address: string | null; reachable: boolean; version: string | null; error: string | null };
  /** The environment this status is for (null: no environments configured). */
  environment: string | null;
  repository: {
    path: string;
    files: number;
    /** Null when there is no template to compare with. */
    changed: boolean | null;
    /** Known when this checkout built the current template. */
    changedFiles: ChangedFiles | null;
  };
  template: TemplateInfo | null;
  clones: { count: number; totalBytes: number };
  /** Every configured environment's template, in configuration order. */
  environments: EnvironmentStatus[];
}

/** Why the server cannot be asked without starting it (a stopped embedded server), or null. */
async function notRunning(project: Project): Promise<string | null> {
  if (project.config.database !== null) return null;
  const { serverStatus } = await import('./server.js');
  return (await serverStatus(project.config.stateDir)).running ? null : 'the embedded server is not running (it starts on first use)';
}

/** The project's connection when the server can be asked without starting it, else null. */
export async function connectionIfRunning(project: Project): Promise<pg.Client | null> {
  return (await notRunning(project)) === null ? project.connection().catch(() => null) : null;
}

/** Each configured environment's files and, when `admin` is given, its template's state. */
export async function environmentStates(project: Project, scan: ScanResult, admin: pg.Client | null): Promise<EnvironmentStatus[]> {
  const { config } = project;
  const rows = Object.keys(config.environments).map((name) => {
    const selection = project.environmentNamed(name);
    const state = project.stateFor(selection, scan);
    const row: EnvironmentStatus = { name, template: selection.templateName, files: state.files.length, state: 'unknown', builtAt: null };
    return { row, fingerprint: state.fingerprint };
  });
  for (const { row, fingerprint } of admin ? rows : []) {
    const template = await readTemplate(admin!, row.template);
    row.state = !template ? 'missing' : (await isFresh(template, fingerprint, config)) ? 'fresh' : 'stale';
    row.builtAt = template?.builtAt ?? null;
  }
  return rows.map(({ row }) => row);
}

/** The project's environment, or null when several exist and none was chosen: status still shows them all. */
function chosenEnvironment(project: Project): EnvironmentSelection | null {
  try {
    return project.environment;
  } catch (error) {
    if (isDbfastError(error, 'ENVIRONMENT_REQUIRED')) return null;
    throw error;
  }
}

export async function collectStatus(project: Project): Promise<ProjectStatus> {
  const { config } = project;
  const scan = await project.scanRepository();
  const selection = chosenEnvironment(project);
  const state = selection && project.stateFor(selection, scan);
  const status: ProjectStatus = {
    server: { embedded: config.database === null, address: null, reachable: false, version: null, error: null },
    environment: selection?.name ?? null,
    repository: { path: config.repository.path, files: (state ?? scan).files.length, changed: null, changedFiles: null },
    template: null,
    clones: { count: 0, totalBytes: 0 },
    environments: [],
  };
  status.server.error = await notRunning(project);
  let admin: pg.Client | null = null;
  if (!status.server.error) {
    try {
      status.server.address = (await project.server()).label;
      admin = await project.connection();
      status.server.version = (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
      status.server.reachable = true;
    } catch (error) {
      status.server.error = (error as Error).message;
      admin = null;
    }
  }
  status.environments = await environmentStates(project, scan, admin);
  if (!admin || !selection) return status;
  status.template = await readTemplate(admin, selection.templateName, { withSize: true });
  const clones = (await listClones(admin)).filter((clone) => clone.template === selection.templateName);
  status.clones = { count: clones.length, totalBytes: clones.reduce((sum, clone) => sum + clone.sizeBytes, 0) };
  if (status.template && state) {
    // isFresh's rule, with the changed included files kept for the list of what changed.
    const includes = await changedIncludes(status.template, config);
    status.repository.changed = status.template.fingerprint !== state.fingerprint || includes.length > 0;
    status.repository.changedFiles = await changedSinceBuild(config, status.template, state, includes);
  }
  return status;
}

interface BuildManifest {
  fingerprint: string;
  files: Record<string, string>;
}

function manifestPath(stateDir: string, templateName: string): string {
  return join(stateDir, 'templates', `${templateName}.json`);
}

/**
 * Remembers which file hashes this checkout built, so status can name what changed since. Best
 * effort: it only serves `status --verbose`, so failing to write it never fails a finished build.
 */
export async function recordBuild(stateDir: string, templateName: string, state: RepositoryState): Promise<void> {
  const manifest: BuildManifest = {
    fingerprint: state.fingerprint,
    files: Object.fromEntries(state.selected.map((file) => [file.relativePath, file.hash])),
  };
  await writeFileAtomic(manifestPath(stateDir, templateName), JSON.stringify(manifest)).catch(() => {});
}

/** Paths relative to the repository, as the scan names them; an included file elsewhere starts with `../`. */
async function changedSinceBuild(
  config: DbfastConfig,
  template: TemplateInfo,
  state: RepositoryState,
  changedIncludes: IncludedFile[],
): Promise<ChangedFiles | null> {
  const manifest = await readFile(manifestPath(config.stateDir, template.name), 'utf8').then(
    (text) => JSON.parse(text) as BuildManifest,
    () => null,
  );
  if (manifest?.fingerprint !== template.fingerprint) return null;
  const current = new Map(state.selected.map((file) => [file.relativePath, file.hash]));
  const includes = changedIncludes.map(({ path }) =>
    relativePosix(config.repository.path, resolve(config.projectDir, path)),
  );
  const modified = [...current].filter(([path, hash]) => path in manifest.files && manifest.files[path] !== hash).map(([path]) => path);
  return {
    added: [...current.keys()].filter((path) => !(path in manifest.files)),
    removed: Object.keys(manifest.files).filter((path) => !current.has(path)),
    modified: [...new Set([...modified, ...includes])],
  };
}
