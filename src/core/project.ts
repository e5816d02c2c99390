/**
 * A dbfast project: its configuration, its server and its SQL files. This is what the CLI
 * commands and programs (test runners) call; the CLI adds only flags and printing.
 */
import { join, posix, relative } from 'node:path';
import type pg from 'pg';
import { type CleanupRules, type CloneInfo, createClone, dropClones, listClones, selectForCleanup } from './clone.js';
import { type DbfastConfig, type LoadConfigOptions, loadConfig } from './config.js';
import { connect, embeddedTarget, type ServerTarget, resolveTarget } from './connection.js';
import { DbfastError } from './errors.js';
import {
  directoriesOf,
  type EnvironmentIssue,
  type EnvironmentSelection,
  resolveEnvironment,
  selectFiles,
  validateEnvironment,
} from './environments.js';
import { relativePosix } from './files.js';
import { computeFingerprint } from './fingerprint.js';
import { isFresh } from './freshness.js';
import { validateDatabaseName } from './names.js';
import { type ScannedFile, type ScanResult, scanRepository } from './scan.js';
import type { SqlFile } from './sql/execute.js';
import {
  collectStatus,
  connectionIfRunning,
  type EnvironmentStatus,
  environmentStates,
  type ProjectStatus,
  recordBuild,
} from './status.js';
import { type BuildOptions, type EnsureResult, ensureTemplate, readTemplate, type TemplateInfo } from './template.js';

export interface RepositoryState {
  /** Every repository file (after [repository] patterns). */
  scan: ScanResult;
  /** The environment's files, in execution order. */
  selected: ScannedFile[];
  /** The files to run, with paths shown relative to the project folder (`db/0_schema/01.sql`). */
  files: SqlFile[];
  fingerprint: string;
}

export interface FreshnessCheck {
  state: RepositoryState;
  template: TemplateInfo | null;
  fresh: boolean;
}

export interface SeedOptions extends Omit<BuildOptions, 'force'> {
  /** Name of the new database; default `<template>_<short id>`. */
  name?: string;
  replace?: boolean;
}

export interface SeedResult {
  database: string;
  url: string;
  template: string;
  rebuilt: boolean;
  timings: { check_ms: number; build_ms: number; clone_ms: number; total_ms: number };
}

export interface OpenOptions extends LoadConfigOptions {
  /** Environment to work on; else DBFAST_ENV, [database] default_environment or the only one. */
  environment?: string;
  /** What the user should know but the library does not print (the embedded server moved to another port). */
  onWarning?: (message: string) => void;
}

export class Project {
  private target: Promise<ServerTarget> | undefined;
  private admin: Promise<pg.Client> | undefined;

  private selected: EnvironmentSelection | undefined;

  constructor(
    readonly config: DbfastConfig,
    private readonly requestedEnvironment?: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly onWarning?: (message: string) => void,
  ) {}

  static async open(options: OpenOptions = {}): Promise<Project> {
    return new Project(await loadConfig(options), options.environment, options.env, options.onWarning);
  }

  /**
   * The environment this project works on: its files and its template. Resolved on first use, so
   * that listing and validating environments works even when none is chosen.
   */
  get environment(): EnvironmentSelection {
    this.selected ??= resolveEnvironment(this.config, this.requestedEnvironment, this.env);
    return this.selected;
  }

  /** The selection for a configured environment by name (USAGE error for unknown names). */
  environmentNamed(name: string): EnvironmentSelection {
    return resolveEnvironment(this.config, name, this.env);
  }

  /** Problems of one environment's rules (empty: valid). Unknown names are a USAGE error. */
  async validateEnvironment(name: string): Promise<EnvironmentIssue[]> {
    this.environmentNamed(name); // an unknown name is a usage error before any scanning
    const { files } = await this.scanRepository();
    return validateEnvironment(this.config, name, files, directoriesOf(files));
  }

  /** Every configured environment: files, template and whether it is fresh. Does not start a stopped embedded server. */
  async environments(): Promise<EnvironmentStatus[]> {
    const [scan, admin] = await Promise.all([this.scanRepository(), connectionIfRunning(this)]);
    return environmentStates(this, scan, admin);
  }

  get templateName(): string {
    return this.environment.templateName;
  }

  /** The server, started first when it is the embedded one. */
  server(): Promise<ServerTarget> {
    this.target ??= this.config.database === null ? this.embeddedServer() : resolveTarget(this.config, this.env);
    return this.target;
  }

  private async embeddedServer(): Promise<ServerTarget> {
    const { ensureServer } = await import('./server.js');
    const { stateDir, stateDirFromEnv } = this.config;
    return embeddedTarget(await ensureServer(stateDir, { env: this.env, onWarning: this.onWarning, stateDirFromEnv }));
  }

  /** The environment's files and fingerprint. */
  async scan(): Promise<RepositoryState> {
    return this.stateFor(this.environment, await this.scanRepository());
  }

  /** Every repository file (after [repository] patterns), through the stat cache. */
  scanRepository(): Promise<ScanResult> {
    const { repository, stateDir } = this.config;
    return scanRepository({
      root: repository.path,
      include: repository.include,
      exclude: repository.exclude,
      cachePath: join(stateDir, 'scan-cache.tsv'),
    });
  }

  /** What `environment` selects from `scan`; its rules are part of the fingerprint. */
  stateFor(environment: EnvironmentSelection, scan: ScanResult): RepositoryState {
    const { repository, projectDir } = this.config;
    const selected = environment.settings ? selectFiles(scan.files, environment.settings) : scan.files;
    const shownRoot = relativePosix(projectDir, scan.root);
    const files = selected.map((file) => ({
      absolutePath: file.absolutePath,
      relativePath: shownRoot ? posix.join(shownRoot, file.relativePath) : file.relativePath,
      hash: file.hash,
    }));
    const selection = { include: repository.include, exclude: repository.exclude, environment: environment.settings };
    return { scan, selected, files, fingerprint: computeFingerprint({ files: selected, selection }) };
  }

  /** Builds the template when the files changed since it was built (always with `force`). */
  async build(options: BuildOptions = {}): Promise<EnsureResult> {
    return this.buildFrom(await this.scan(), options);
  }

  private async buildFrom(state: RepositoryState, options: BuildOptions): Promise<EnsureResult> {
    if (state.files.length === 0) {
      const { repository } = this.config;
      const where = relative(process.cwd(), repository.path) || '.';
      const { name } = this.environment;
      throw new DbfastError('REPOSITORY_EMPTY', name ? `environment ${name} selects no SQL files in ${where}` : `no SQL files in ${where}`, {
        hint: name
          ? `check [environments.${name}] in dbfast.toml (dbfast validate-env ${name})`
          : `nothing matches ${repository.include.join(', ')}; add files or change [repository] include_patterns`,
      });
    }
    const result = await ensureTemplate(
      await this.server(),
      {
        name: this.templateName,
        fingerprint: state.fingerprint,
        files: state.files,
        projectDir: this.config.projectDir,
        stateDir: this.config.stateDir,
        validation: this.config.validation,
        timeoutMs: this.config.performance.buildTimeoutMs,
        strategy: await this.cloneStrategy(),
      },
      { batchBytes: this.config.performance.statementBatchBytes, ...options },
    );
    if (result.rebuilt) await recordBuild(this.config.stateDir, this.templateName, state);
    return result;
  }

  /**
   * Is the template up to date with the files? What every seed pays when nothing changed: a scan
   * that reads no file contents (stat cache), one catalog query, and a stat of each included file.
   */
  async check(): Promise<FreshnessCheck> {
    const [state, template] = await Promise.all([this.scan(), this.connection().then((admin) => readTemplate(admin, this.templateName))]);
    return { state, template, fresh: await isFresh(template, state.fingerprint, this.config) };
  }

  /** A new database cloned from an up-to-date template (rebuilt first when the files changed). */
  async seed(options: SeedOptions = {}): Promise<SeedResult> {
    const started = performance.now();
    // A bad name must fail before minutes of building, not after.
    if (options.name !== undefined) validateDatabaseName(options.name);
    const { state, fresh } = await this.check();
    const admin = await this.connection();
    const checked = performance.now();
    let rebuilt = false;
    let fingerprint = state.fingerprint;
    if (!fresh) {
      const result = await this.buildFrom(state, options);
      rebuilt = result.rebuilt;
      fingerprint = result.template.fingerprint;
    }
    const built = performance.now();
    const { maxConcurrentClones, cloneTimeoutMs } = this.config.performance;
    const database = await createClone(admin, {
      name: options.name,
      replace: options.replace,
      template: this.templateName,
      fingerprint,
      maxConcurrent: maxConcurrentClones,
      timeoutMs: cloneTimeoutMs,
      strategy: await this.cloneStrategy(),
    });
    const done = performance.now();
    return {
      database,
      url: (await this.server()).url(database),
      template: this.templateName,
      rebuilt,
      timings: {
        check_ms: round(checked - started),
        build_ms: round(built - checked),
        clone_ms: round(done - built),
        total_ms: round(done - started),
      },
    };
  }

  /** Server, repository, template and clones; does not start a stopped embedded server. */
  async status(): Promise<ProjectStatus> {
    return collectStatus(this);
  }

  /** This template's clones, or with `all` every clone dbfast made on the server. */
  async list(options: { all?: boolean } = {}): Promise<CloneInfo[]> {
    const clones = await listClones(await this.connection());
    return options.all ? clones : clones.filter((clone) => clone.template === this.templateName);
  }

  /** Drops this template's clones chosen by `rules`; returns their names. */
  async clean(rules: CleanupRules): Promise<string[]> {
    return this.drop(...selectForCleanup(await this.list(), rules).map((clone) => clone.name));
  }

  async drop(...names: string[]): Promise<string[]> {
    return dropClones(await this.connection(), names);
  }

  /** Closes the project's connection; the embedded server keeps running for the next command. */
  async close(): Promise<void> {
    const admin = this.admin;
    this.admin = undefined;
    const client = await admin?.catch(() => null);
    await client?.end().catch(() => {});
  }

  private version: Promise<number> | undefined;

  /** The configured CREATE DATABASE strategy, on servers that have strategies (15+). */
  private async cloneStrategy(): Promise<'file_copy' | 'wal_log' | undefined> {
    this.version ??= this.connection().then(async (admin) => Number((await admin.query('SHOW server_version_num')).rows[0].server_version_num));
    return (await this.version) >= 150000 ? this.config.performance.cloneStrategy : undefined;
  }

  /** The project's maintenance connection, opened on first use and shared: do not end it (close() does). */
  connection(): Promise<pg.Client> {
    if (!this.admin) {
      const admin = this.server().then((target) => connect(target));
      // A failed connection is not remembered: the next call tries again.
      admin.catch(() => {
        if (this.admin === admin) this.admin = undefined;
      });
      this.admin = admin;
    }
    return this.admin;
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
