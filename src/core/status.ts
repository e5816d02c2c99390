/**
 * `dbfast status`: the server, the repository, the template and the clones in one object. A
 * stopped embedded server is reported, not started.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type pg from 'pg';
import { listClones } from './clone.js';
import type { DbfastConfig } from './config.js';
import type { ServerTarget } from './connection.js';
import type { RepositoryState } from './project.js';
import { readTemplate, type TemplateInfo } from './template.js';

export interface ChangedFiles {
  added: string[];
  removed: string[];
  modified: string[];
}

export interface ProjectStatus {
  server: { embedded: boolean; address: string | null; reachable: boolean; version: string | null; error: string | null };
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
}

export interface StatusSources {
  config: DbfastConfig;
  scan(): Promise<RepositoryState>;
  server(): Promise<ServerTarget>;
  admin(): Promise<pg.Client>;
}

export async function collectStatus(sources: StatusSources): Promise<ProjectStatus> {
  const { config } = sources;
  const state = await sources.scan();
  const status: ProjectStatus = {
    server: { embedded: config.database === null, address: null, reachable: false, version: null, error: null },
    repository: { path: config.repository.path, files: state.files.length, changed: null, changedFiles: null },
    template: null,
    clones: { count: 0, totalBytes: 0 },
  };
  if (config.database === null) {
    const { serverStatus } = await import('./server.js');
    if (!(await serverStatus(config.stateDir)).running) {
      status.server.error = 'the embedded server is not running (it starts on first use)';
      return status;
    }
  }
  try {
    const target = await sources.server();
    status.server.address = target.label;
    const admin = await sources.admin();
    status.server.version = (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
    status.server.reachable = true;
    status.template = await readTemplate(admin, config.templateName, { withSize: true });
    const clones = (await listClones(admin)).filter((clone) => clone.template === config.templateName);
    status.clones = { count: clones.length, totalBytes: clones.reduce((sum, clone) => sum + clone.sizeBytes, 0) };
  } catch (error) {
    status.server.error = (error as Error).message;
    return status;
  }
  if (status.template) {
    status.repository.changed = status.template.fingerprint !== state.fingerprint;
    status.repository.changedFiles = await changedSinceBuild(config, status.template.fingerprint, state);
  }
  return status;
}

interface BuildManifest {
  fingerprint: string;
  files: Record<string, string>;
}

function manifestPath(config: DbfastConfig): string {
  return join(config.stateDir, 'templates', `${config.templateName}.json`);
}

/** Remembers which file hashes this checkout built, so status can name what changed since. */
export async function recordBuild(config: DbfastConfig, state: RepositoryState): Promise<void> {
  const manifest: BuildManifest = {
    fingerprint: state.fingerprint,
    files: Object.fromEntries(state.scan.files.map((file) => [file.relativePath, file.hash])),
  };
  const path = manifestPath(config);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(`${path}.tmp`, JSON.stringify(manifest));
  await rename(`${path}.tmp`, path);
}

async function changedSinceBuild(config: DbfastConfig, fingerprint: string, state: RepositoryState): Promise<ChangedFiles | null> {
  const manifest = await readFile(manifestPath(config), 'utf8').then(
    (text) => JSON.parse(text) as BuildManifest,
    () => null,
  );
  if (manifest?.fingerprint !== fingerprint) return null;
  const current = new Map(state.scan.files.map((file) => [file.relativePath, file.hash]));
  return {
    added: [...current.keys()].filter((path) => !(path in manifest.files)),
    removed: Object.keys(manifest.files).filter((path) => !current.has(path)),
    modified: [...current].filter(([path, hash]) => path in manifest.files && manifest.files[path] !== hash).map(([path]) => path),
  };
}
