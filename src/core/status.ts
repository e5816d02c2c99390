/**
 * `dbfast status`: the server, the repository, the template and the clones in one object. A
 * stopped embedded server is reported, not started.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { listClones } from './clone.js';
import type { EnvironmentSelection } from './environments.js';
import { isDbfastError } from './errors.js';
import { writeFileAtomic } from './files.js';
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

/** Asks the server only when it is reachable without starting anything. */
async function serverReachable(project: Project): Promise<string | null> {
  if (project.config.database !== null) return null;
  const { serverStatus } = await import('./server.js');
  return (await serverStatus(project.config.stateDir)).running ? null : 'the embedded server is not running (it starts on first use)';
}

export async function environmentStates(project: Project, scan: ScanResult): Promise<EnvironmentStatus[]> {
  const { config } = project;
  const rows = Object.keys(config.environments).map((name) => {
    const selection = project.environmentNamed(name);
    const state = project.stateFor(selection, scan);
    const row: EnvironmentStatus = { name, template: selection.templateName, files: state.files.length, state: 'unknown', builtAt: null };
    return { row, fingerprint: state.fingerprint };
  });
  if ((await serverReachable(project)) === null) {
    const admin = await project.connection().catch(() => null);
    for (const { row, fingerprint } of admin ? rows : []) {
      const template = await readTemplate(admin!, row.template);
      row.state = !template ? 'missing' : template.fingerprint === fingerprint ? 'fresh' : 'stale';
      row.builtAt = template?.builtAt ?? null;
    }
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
    repository: { path: config.repository.path, files: (state ?? { files: scan.files }).files.length, changed: null, changedFiles: null },
    template: null,
    clones: { count: 0, totalBytes: 0 },
    environments: await environmentStates(project, scan),
  };
  status.server.error = await serverReachable(project);
  if (status.server.error) return status;
  try {
    const target = await project.server();
    status.server.address = target.label;
    const admin = await project.connection();
    status.server.version = (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
    status.server.reachable = true;
    if (!selection) return status;
    status.template = await readTemplate(admin, selection.templateName, { withSize: true });
    const clones = (await listClones(admin)).filter((clone) => clone.template === selection.templateName);
    status.clones = { count: clones.length, totalBytes: clones.reduce((sum, clone) => sum + clone.sizeBytes, 0) };
  } catch (error) {
    status.server.error = (error as Error).message;
    return status;
  }
  if (status.template && state) {
    status.repository.changed = status.template.fingerprint !== state.fingerprint;
    status.repository.changedFiles = await changedSinceBuild(config.stateDir, selection!.templateName, status.template.fingerprint, state);
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

async function changedSinceBuild(
  stateDir: string,
  templateName: string,
  fingerprint: string,
  state: RepositoryState,
): Promise<ChangedFiles | null> {
  const manifest = await readFile(manifestPath(stateDir, templateName), 'utf8').then(
    (text) => JSON.parse(text) as BuildManifest,
    () => null,
  );
  if (manifest?.fingerprint !== fingerprint) return null;
  const current = new Map(state.selected.map((file) => [file.relativePath, file.hash]));
  return {
    added: [...current.keys()].filter((path) => !(path in manifest.files)),
    removed: Object.keys(manifest.files).filter((path) => !current.has(path)),
    modified: [...current].filter(([path, hash]) => path in manifest.files && manifest.files[path] !== hash).map(([path]) => path),
  };
}
