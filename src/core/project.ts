/**
 * A dbfast project: its configuration, its server and its SQL files. This is what the CLI
 * commands and programs (test runners) call; the CLI adds only flags and printing.
 */
import type pg from 'pg';
import { type CleanupRules, type CloneInfo, createClone, dropClones, generateCloneName, listClones, selectForCleanup } from './clone.js';
import { type DbfastConfig, type LoadConfigOptions, loadConfig } from './config/index.js';
import { DbfastError, isDbfastError } from './errors.js';
import {
  directoriesOf,
  type EnvironmentIssue,
  type EnvironmentSelection,
  resolveEnvironment,
  validateEnvironment,
} from './environments.js';
import { isFresh } from './freshness.js';
import { collectGarbage, type GcResult, overBudgetMessage } from './gc.js';
import { recordBuild } from './manifest.js';
import { validateDatabaseName } from './names.js';
import { ReusedConnections, withClient } from './pg/client.js';
import { lockKeys, tryAdvisoryLock } from './pg/locks.js';
import { resolveTarget, type ServerTarget } from './pg/target.js';
import { claimSpare, drainPool, type FillResult, fillPool, readPool } from './pool.js';
import {
  type ProjectScan,
  type RepositoryFiles,
  type RepositoryState,
  repositoryFiles,
  repositoryState,
  requireFiles,
  scanProjectRepository,
} from './repository.js';
import { dropServeDatabases } from './serve/catalog.js';
import { chooseStrategy, type ServerCopying, type StrategyChoice } from './strategy.js';
import { collectStatus, type EnvironmentStatus, environmentStates, type ProjectStatus, type StatusInput } from './status.js';
import { type BuildOptions, type EnsureResult, ensureTemplate, readTemplate, type TemplateInfo } from './template.js';

export type { ProjectScan, RepositoryFiles, RepositoryState } from './repository.js';

export interface FreshnessCheck {
  state: RepositoryState;
  template: TemplateInfo | null;
  fresh: boolean;
}

export interface SeedOptions extends Omit<BuildOptions, 'force'> {
  /** Name of the new database; default `<template>_<short id>`. */
  name?: string;
  replace?: boolean;
  /** Refill the warm pool in the background of this process (seed: default true; build: default false); the CLI refills from a detached process instead. */
  refill?: boolean;
}

export interface SeedResult {
  database: string;
  url: string;
  template: string;
  rebuilt: boolean;
  /** Taken from the warm pool (a rename) rather than copied. */
  pooled: boolean;
  timings: { check_ms: number; build_ms: number; clone_ms: number; total_ms: number };
}

export interface OpenOptions extends LoadConfigOptions {
  /** Environment to work on; else DBFAST_ENV, [database] default_environment or the only one. */
  environment?: string;
  /** What the user should know but the library does not print (the embedded server moved to another port). */
  onWarning?: (message: string) => void;
}

/**
 * Concurrent calls on one project never share a session (advisory locks, statement_timeout): each
 * takes its own connection, from the few idle ones kept for reuse (withAdmin) or a new one, and a
 * connection whose work failed is closed, so a dropped connection never outlives the call that saw it.
 */
export class Project {
  private target: Promise<ServerTarget> | undefined;
  private selected: EnvironmentSelection | undefined;
  private readonly refills = new Set<Promise<void>>();
  private connections: ReusedConnections | undefined;

  constructor(
    readonly config: DbfastConfig,
    private readonly requestedEnvironment?: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly onWarning?: (message: string) => void,
    /** Where the configuration was looked for: reload() looks there again. */
    private readonly cwd?: string,
  ) {}

  static async open(options: OpenOptions = {}): Promise<Project> {
    return new Project(await loadConfig(options), options.environment, options.env, options.onWarning, options.cwd);
  }

  /** The same project with dbfast.toml read again (CONFIG_INVALID while it is broken). */
  reload(): Promise<Project> {
    return Project.open({
      configPath: this.config.configPath ?? undefined,
      cwd: this.cwd,
      environment: this.requestedEnvironment,
      env: this.env,
      onWarning: this.onWarning,
    });
  }

  /** The same project working on another configured environment (USAGE error for unknown names). */
  withEnvironment(name: string): Project {
    this.environmentNamed(name);
    return new Project(this.config, name, this.env, this.onWarning, this.cwd);
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
    const [scan, server] = await Promise.all([this.scanRepository(), this.serverIfRunning()]);
    const environments = this.configuredEnvironments();
    if ('error' in server) return environmentStates(this.config, environments, scan, null);
    return withClient(server.target, (admin) => environmentStates(this.config, environments, scan, admin)).catch(() =>
      environmentStates(this.config, environments, scan, null),
    );
  }

  get templateName(): string {
    return this.environment.templateName;
  }

  /** The server, started first when it is the embedded one. */
  server(): Promise<ServerTarget> {
    if (!this.target) {
      const target = resolveTarget(this.config, this.env, { onWarning: this.onWarning });
      // A failure is not remembered: the next call tries again.
      target.catch(() => {
        if (this.target === target) this.target = undefined;
      });
      this.target = target;
    }
    return this.target;
  }

  /** The environment's files and fingerprint. */
  async scan(): Promise<RepositoryState> {
    return this.stateFor(this.environment, await this.scanRepository());
  }

  /** Every repository file (after the repositories' patterns), through the stat cache. */
  async scanRepository(): Promise<ProjectScan> {
    return scanProjectRepository(this.config).catch((error) => {
      // Without dbfast.toml the missing repository is the default `db/`: the real problem is the missing config.
      if (this.config.configPath === null && isDbfastError(error, 'REPOSITORY_NOT_FOUND')) {
        throw new DbfastError('CONFIG_NOT_FOUND', 'no dbfast.toml here or in any parent folder, and no db/ folder', {
          hint: 'run dbfast init',
        });
      }
      throw error;
    });
  }

  /** What `environment` selects from `scan`; its rules are part of the fingerprint. */
  stateFor(environment: EnvironmentSelection, scan: ProjectScan): RepositoryState {
    return repositoryState(this.config, environment, scan);
  }

  /** Each repository, in build order, with its file count and what each configured environment selects from it. */
  async repositories(): Promise<RepositoryFiles[]> {
    return repositoryFiles(this.config, await this.scanRepository(), this.configuredEnvironments());
  }

  /**
   * Builds the template when the files changed since it was built (always with `force`); with
   * `refill`, then refills the warm pool in the background (see close()).
   */
  async build(options: BuildOptions & Pick<SeedOptions, 'refill'> = {}): Promise<EnsureResult> {
    const state = await this.scan();
    const target = await this.server();
    const view = await this.withAdmin(target, (admin) => readPool(admin, this.templateName));
    const result = await this.buildFrom(target, state, this.cloneStrategy(view), options);
    if (result.rebuilt && this.config.performance.poolSize > 0 && options.refill) this.refillInBackground();
    return result;
  }

  private async buildFrom(target: ServerTarget, state: RepositoryState, strategy: CloneStrategy, options: BuildOptions): Promise<EnsureResult> {
    requireFiles(this.config, this.environment, state);
    const result = await ensureTemplate(
      target,
      {
        name: this.templateName,
        fingerprint: state.fingerprint,
        layers: state.layers,
        checkpoints: this.config.performance.layerCheckpoints,
        projectDir: this.config.projectDir,
        stateDir: this.config.stateDir,
        validation: this.config.validation,
        timeoutMs: this.config.performance.buildTimeoutMs,
        strategy,
        keepTemplates: this.config.performance.keepTemplates,
      },
      { batchBytes: this.config.performance.statementBatchBytes, ...options },
    );
    if (result.rebuilt) {
      await recordBuild(this.config.stateDir, this.templateName, state);
      // Among what it drops: the old build's spares, never handed out (claimSpare checks the build) but holding disk.
      await this.gcAfterBuild(target);
    }
    return result;
  }

  /** Best effort: a build that succeeded never fails for its sweep. */
  private async gcAfterBuild(target: ServerTarget): Promise<void> {
    try {
      const result = await this.withAdmin(target, (admin) => collectGarbage(admin, this.projectTemplates(), this.gcPolicy()));
      if (result.overBudget) this.onWarning?.(overBudgetMessage(result));
    } catch (error) {
      this.onWarning?.(`garbage collection after the build failed: ${(error as Error).message}`);
    }
  }

  /**
   * Drops, for every environment's template, what no run needs any more: orphans of crashed runs,
   * stale spares, checkpoints of a template that no longer exists, kept templates beyond
   * keep_templates, clones older than clone_ttl; then kept templates, checkpoints and spares while
   * the project's databases use more than max_disk. Templates whose build is running are skipped.
   */
  async gc(options: { dryRun?: boolean } = {}): Promise<GcResult> {
    return this.withAdmin(await this.server(), (admin) => collectGarbage(admin, this.projectTemplates(), { ...this.gcPolicy(), dryRun: options.dryRun }));
  }

  private gcPolicy() {
    const { keepTemplates, cloneTtlMs, maxDiskBytes } = this.config.performance;
    return { keepTemplates, cloneTtlMs, maxDiskBytes };
  }

  /** Every configured environment's template (the one template without environments). */
  private projectTemplates(): string[] {
    const environments = this.configuredEnvironments();
    return environments.length === 0 ? [this.config.templateName] : [...new Set(environments.map((environment) => environment.templateName))];
  }

  /**
   * Is the template up to date with the files? What every seed pays when nothing changed: a scan
   * that reads no file contents (stat cache), one catalog query, and a stat of each included file.
   */
  async check(): Promise<FreshnessCheck> {
    const state = await this.scan();
    return this.withAdmin(await this.server(), (admin) => this.checkWith(admin, state));
  }

  private async checkWith(admin: pg.Client, state: RepositoryState): Promise<FreshnessCheck> {
    const template = await readTemplate(admin, this.templateName);
    return { state, template, fresh: await isFresh(template, state.fingerprint, this.config) };
  }

  /**
   * A new database cloned from an up-to-date template (rebuilt first when the files changed): a
   * spare from the warm pool when one is ready, else a copy. Safe to call concurrently: each call
   * has its own connection, and max_concurrent_clones bounds the copies running at once, across
   * calls and processes. Refills the pool in the background unless `refill` is false (see close()).
   */
  async seed(options: SeedOptions = {}): Promise<SeedResult> {
    const started = performance.now();
    // A bad name must fail before minutes of building, not after; a missing repository before the server starts.
    if (options.name !== undefined) validateDatabaseName(options.name);
    await this.connectAhead();
    const state = await this.scan();
    const target = await this.server();
    let checked = 0;
    let strategy: CloneStrategy;
    let pooled = false;
    // When nothing changed, one connection checks and clones (or takes a spare); a rebuild runs on its own in between.
    let database = await this.withAdmin(target, async (admin) => {
      const view = await readPool(admin, this.templateName);
      const fresh = await isFresh(view.template, state.fingerprint, this.config);
      checked = performance.now();
      strategy = this.cloneStrategy(view);
      if (!fresh) return null;
      const spare = this.usesPool(options) ? await claimSpare(admin, view, { name: options.name ?? generateCloneName(this.templateName), fingerprint: state.fingerprint }) : null;
      pooled = spare !== null;
      return spare ?? this.cloneWith(admin, state.fingerprint, strategy, options);
    });
    let built = checked;
    let rebuilt = false;
    if (database === null) {
      const { template, rebuilt: byThisCall } = await this.buildFrom(target, state, strategy!, options);
      rebuilt = byThisCall;
      built = performance.now();
      database = await this.withAdmin(target, (admin) => this.cloneWith(admin, template.fingerprint, strategy, options));
    }
    const done = performance.now();
    if (this.config.performance.poolSize > 0 && options.refill !== false) this.refillInBackground();
    return {
      database,
      url: target.url(database),
      template: this.templateName,
      rebuilt,
      pooled,
      timings: {
        check_ms: round(checked - started),
        build_ms: round(built - checked),
        clone_ms: round(done - built),
        total_ms: round(done - started),
      },
    };
  }

  private cloneWith(admin: pg.Client, fingerprint: string, strategy: CloneStrategy, options: SeedOptions): Promise<string> {
    const { maxConcurrentClones, cloneTimeoutMs } = this.config.performance;
    return createClone(admin, {
      name: options.name,
      replace: options.replace,
      template: this.templateName,
      fingerprint,
      maxConcurrent: maxConcurrentClones,
      timeoutMs: cloneTimeoutMs,
      strategy,
    });
  }

  /**
   * Starts connecting while the files are scanned, when that starts nothing: a configured server,
   * or the embedded one already running (a missing repository must fail before a server starts).
   */
  private async connectAhead(): Promise<void> {
    if (this.connections?.ready) return;
    if (this.config.database === null) {
      const { serverStatus } = await import('./server.js');
      if (!(await serverStatus(this.config.stateDir)).running) return;
    }
    this.server().then(
      (target) => this.connectionsTo(target).prepare(),
      () => {},
    );
  }

  /** A name of the caller's own to replace is the ordinary path's: it checks what it replaces. */
  private usesPool(options: SeedOptions): boolean {
    return this.config.performance.poolSize > 0 && !options.replace;
  }

  /**
   * Drops the template's stale spares and makes new ones until [performance] pool_size are ready.
   * Returns at once when another process is filling the same pool, and when the embedded server is
   * stopped: a refill outliving its seed must not start a server nobody will stop.
   */
  async fillPool(): Promise<FillResult & { stopped?: string }> {
    const server = await this.serverIfRunning();
    if ('error' in server) return { created: [], dropped: [], busy: false, stopped: server.error };
    const { poolSize, maxConcurrentClones, cloneTimeoutMs, cloneStrategy } = this.config.performance;
    return fillPool(server.target, {
      template: this.templateName,
      size: poolSize,
      maxConcurrent: maxConcurrentClones,
      timeoutMs: cloneTimeoutMs,
      cloneStrategy,
    });
  }

  /** Drops every spare of the template. */
  async drainPool(): Promise<string[]> {
    return this.withAdmin(await this.server(), (admin) => drainPool(admin, this.templateName));
  }

  /** Waits for the pool refills this object started in the background and closes its idle connections. */
  async close(): Promise<void> {
    while (this.refills.size > 0) await Promise.all(this.refills);
    await this.connections?.close();
    this.connections = undefined;
  }

  /**
   * Runs `work` on a connection to the maintenance database, reused across calls (a seed from the
   * pool costs two round trips; a new connection more than both). Idle ones never keep the process alive.
   */
  private withAdmin<T>(target: ServerTarget, work: (admin: pg.Client) => Promise<T>): Promise<T> {
    return this.connectionsTo(target).use(work);
  }

  private connectionsTo(target: ServerTarget): ReusedConnections {
    this.connections ??= new ReusedConnections(target);
    return this.connections;
  }

  private refillInBackground(): void {
    // A refill already under way refills for this call too (fillPool reads the count again after each spare).
    if (this.refills.size > 0) return;
    const refill: Promise<void> = this.fillPool().then(
      () => {},
      (error: Error) => this.onWarning?.(`refilling the pool of ${this.templateName} failed: ${error.message}`),
    );
    this.refills.add(refill);
    refill.finally(() => this.refills.delete(refill));
  }

  /** Server, repository, template and clones; does not start a stopped embedded server. */
  async status(): Promise<ProjectStatus> {
    const input: StatusInput = {
      config: this.config,
      scan: await this.scanRepository(),
      selection: this.chosenEnvironment(),
      environments: this.configuredEnvironments(),
      templates: this.projectTemplates(),
      server: await this.serverIfRunning(),
    };
    return collectStatus(input);
  }

  /** This template's clones, or with `all` every clone dbfast made on the server. */
  async list(options: { all?: boolean } = {}): Promise<CloneInfo[]> {
    const clones = await this.withAdmin(await this.server(), listClones);
    return options.all ? clones : clones.filter((clone) => clone.template === this.templateName);
  }

  /** Drops this template's clones chosen by `rules` (with `all`, its pool's spares too); returns their names. */
  async clean(rules: CleanupRules): Promise<string[]> {
    const dropped = await this.drop(...selectForCleanup(await this.list(), rules).map((clone) => clone.name));
    return rules.all ? [...dropped, ...(await this.drainPool())] : dropped;
  }

  /**
   * Drops every database `dbfast serve` made on this server (templates initialised through its API
   * and their test databases), which a server killed mid-request may leave. Refused while a dbfast
   * serve runs there: it manages them (DELETE /api/v1/admin/templates drops them).
   */
  async cleanServe(): Promise<string[]> {
    return this.withAdmin(await this.server(), async (admin) => {
      const dropped = await tryAdvisoryLock(admin, lockKeys.serve, () => dropServeDatabases(admin), { serverWide: true });
      if (dropped.locked) return dropped.result;
      throw new DbfastError('ALREADY_RUNNING', 'a dbfast serve is running on this server and manages these databases', {
        hint: 'stop it first, or ask it to drop them: DELETE /api/v1/admin/templates',
      });
    });
  }

  async drop(...names: string[]): Promise<string[]> {
    return this.withAdmin(await this.server(), (admin) => dropClones(admin, names));
  }

  private configuredEnvironments(): EnvironmentSelection[] {
    return Object.keys(this.config.environments).map((name) => this.environmentNamed(name));
  }

  /** The project's environment, or null when several exist and none was chosen: status still shows them all. */
  chosenEnvironment(): EnvironmentSelection | null {
    try {
      return this.environment;
    } catch (error) {
      if (isDbfastError(error, 'ENVIRONMENT_REQUIRED')) return null;
      throw error;
    }
  }

  /** The server when it can be asked without starting it (a stopped embedded server cannot), else why not. */
  private async serverIfRunning(): Promise<StatusInput['server']> {
    if (this.config.database === null) {
      const { serverStatus } = await import('./server.js');
      if (!(await serverStatus(this.config.stateDir)).running) return { error: 'the embedded server is not running (it starts on first use)' };
    }
    return this.server().then(
      (target) => ({ target }),
      (error: Error) => ({ error: error.message }),
    );
  }

  /** The CREATE DATABASE strategy for this server (strategy.ts). */
  private cloneStrategy(server: ServerCopying): CloneStrategy {
    return chooseStrategy(server, this.config.performance.cloneStrategy).strategy;
  }
}

type CloneStrategy = StrategyChoice['strategy'];

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
