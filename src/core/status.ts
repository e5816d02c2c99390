/**
 * `dbfast status`: the server, the repository, the template and the clones in one object, from
 * plain inputs the project gathers. A stopped embedded server is reported, not started.
 */
import type pg from 'pg';
import { listClones } from './clone.js';
import type { DbfastConfig } from './config/index.js';
import { type DiskUsage, diskUsage, projectDatabases } from './disk.js';
import type { EnvironmentSelection } from './environments.js';
import { isFresh, changedIncludes } from './freshness.js';
import { type ChangedFiles, changedSinceBuild } from './manifest.js';
import { connect } from './pg/client.js';
import type { ServerTarget } from './pg/target.js';
import { chooseStrategy, SERVER_COPYING_COLUMNS, type ServerCopyingRow, type StrategyChoice, serverCopyingFrom } from './strategy.js';
import { type ProjectScan, type RepositoryFiles, repositoryFiles, repositoryState } from './repository.js';
import { readTemplate, type TemplateInfo } from './template.js';

export type { ChangedFiles } from './manifest.js';

export interface EnvironmentStatus {
  name: string;
  template: string;
  files: number;
  /** unknown: the server could not be asked. */
  state: 'missing' | 'fresh' | 'stale' | 'unknown';
  builtAt: string | null;
}

export interface ProjectStatus {
  server: {
    embedded: boolean;
    address: string | null;
    reachable: boolean;
    version: string | null;
    /** How clones are copied on this server, and why (strategy.ts). */
    cloneStrategy: StrategyChoice | null;
    error: string | null;
  };
  /** The environment this status is for (null: no environments configured). */
  environment: string | null;
  repository: {
    /** The `[repository]` folder; absent with `[[repositories]]`. */
    path?: string;
    /** Each repository, in build order: its file count, and what each configured environment selects from it. */
    repositories: RepositoryFiles[];
    /** The files of the environment (with none chosen: of every repository). */
    files: number;
    /** Null when there is no template to compare with. */
    changed: boolean | null;
    /** Known when this checkout built the current template. */
    changedFiles: ChangedFiles | null;
    /** The template differs and this checkout did not build it: where it came from. */
    otherBuild: { fingerprint: string; builtAt: string; builtBy: string | null } | null;
  };
  template: TemplateInfo | null;
  clones: { count: number; totalBytes: number };
  /** What dbfast's databases of every environment's template use, by kind; null when the server could not be asked. */
  disk: DiskUsage | null;
  /** Every configured environment's template, in configuration order. */
  environments: EnvironmentStatus[];
}

export interface StatusInput {
  config: DbfastConfig;
  scan: ProjectScan;
  /** The chosen environment; null when several exist and none was chosen. */
  selection: EnvironmentSelection | null;
  /** Every configured environment. */
  environments: EnvironmentSelection[];
  /** Every configured environment's template. */
  templates: string[];
  /** The server when it can be asked without starting it, else why it cannot. */
  server: { target: ServerTarget } | { error: string };
}

/** Each environment's files and, when `admin` is given, its template's state. */
export async function environmentStates(
  config: DbfastConfig,
  environments: EnvironmentSelection[],
  scan: ProjectScan,
  admin: pg.Client | null,
): Promise<EnvironmentStatus[]> {
  const rows = environments.map((selection) => {
    const state = repositoryState(config, selection, scan);
    const row: EnvironmentStatus = { name: selection.name!, template: selection.templateName, files: state.files.length, state: 'unknown', builtAt: null };
    return { row, fingerprint: state.fingerprint };
  });
  for (const { row, fingerprint } of admin ? rows : []) {
    const template = await readTemplate(admin!, row.template);
    row.state = !template ? 'missing' : (await isFresh(template, fingerprint, config)) ? 'fresh' : 'stale';
    row.builtAt = template?.builtAt ?? null;
  }
  return rows.map(({ row }) => row);
}

export async function collectStatus(input: StatusInput): Promise<ProjectStatus> {
  const { config, scan, selection } = input;
  const state = selection && repositoryState(config, selection, scan);
  const status: ProjectStatus = {
    server: { embedded: config.database === null, address: null, reachable: false, version: null, cloneStrategy: null, error: null },
    environment: selection?.name ?? null,
    repository: {
      ...(config.repositories[0]!.name === undefined ? { path: config.repositories[0]!.path } : {}),
      repositories: repositoryFiles(config, scan, input.environments),
      files: (state ?? scan).files.length,
      changed: null,
      changedFiles: null,
      otherBuild: null,
    },
    template: null,
    clones: { count: 0, totalBytes: 0 },
    disk: null,
    environments: [],
  };
  if ('error' in input.server) {
    status.server.error = input.server.error;
    status.environments = await environmentStates(config, input.environments, scan, null);
    return status;
  }
  const { target } = input.server;
  status.server.address = target.label;
  const admin = await connect(target).catch((error: Error) => {
    status.server.error = error.message;
    return null;
  });
  try {
    if (admin) {
      const { rows } = await admin.query<ServerCopyingRow & { version: string }>(
        `SELECT current_setting('server_version') AS version, ${SERVER_COPYING_COLUMNS}`,
      );
      status.server.version = rows[0]!.version;
      status.server.cloneStrategy = chooseStrategy(serverCopyingFrom(rows[0]!), config.performance.cloneStrategy);
      status.server.reachable = true;
    }
    status.environments = await environmentStates(config, input.environments, scan, admin);
    if (admin) status.disk = diskUsage(await projectDatabases(admin, input.templates));
    if (!admin || !selection) return status;
    status.template = await readTemplate(admin, selection.templateName, { withSize: true });
    const clones = (await listClones(admin)).filter((clone) => clone.template === selection.templateName);
    status.clones = { count: clones.length, totalBytes: clones.reduce((sum, clone) => sum + clone.sizeBytes, 0) };
  } finally {
    await admin?.end().catch(() => {});
  }
  const { template } = status;
  if (template && state) {
    // isFresh's rule, with the changed included files kept for the list of what changed.
    const includes = await changedIncludes(template, config);
    const otherContent = template.fingerprint !== state.fingerprint;
    status.repository.changed = otherContent || includes.length > 0;
    status.repository.changedFiles = await changedSinceBuild(config, template, state, includes);
    if (otherContent && !status.repository.changedFiles) {
      status.repository.otherBuild = { fingerprint: template.fingerprint, builtAt: template.builtAt, builtBy: template.builtBy ?? null };
    }
  }
  return status;
}
