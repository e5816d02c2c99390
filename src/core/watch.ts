/**
 * Keeping templates built while files change: a file watcher on the repository and dbfast.toml,
 * a debounce, and one build at a time. A change during a build schedules exactly one more build,
 * which sees every change made until it starts. What happens is reported as plain-data events;
 * nothing here prints.
 */
import { basename, isAbsolute, relative, sep } from 'node:path';
import { type FSWatcher, watch } from 'chokidar';
import type { ConfigWarning } from './config/index.js';
import { relativePosix } from './files.js';
import type { Project } from './project.js';
import type { BuildOptions } from './template.js';

export interface WatchedEnvironment {
  /** null when no environments are configured (the base template). */
  environment: string | null;
  template: string;
}

export type WatchEvent =
  /** Watching `paths` (relative to the project folder) for these environments; again after each reload. */
  | { kind: 'watching'; paths: string[]; environments: WatchedEnvironment[] }
  /** Files changed (relative to the project folder), after the debounce: a build follows. */
  | { kind: 'changed'; paths: string[] }
  /** dbfast.toml was read again. */
  | { kind: 'reloaded'; warnings: ConfigWarning[] }
  /** An environment's files are checked, and its template rebuilt if they changed. */
  | ({ kind: 'building' } & WatchedEnvironment)
  | ({ kind: 'unchanged' } & WatchedEnvironment)
  | BuiltEvent
  /**
   * A build (or reading dbfast.toml, or the watcher itself) failed: the previous template stays.
   * `environment` and `template` are absent when no build failed.
   */
  | ({ kind: 'failed'; error: unknown } & Partial<WatchedEnvironment>);

export interface BuiltEvent extends WatchedEnvironment {
  kind: 'built';
  /** From the start of the check to the swap. */
  durationMs: number;
  /** The template's: what its files did, including the layers reused from checkpoints. */
  files: number;
  statements: number;
  rowsCopied: number;
  /** Layers taken from checkpoints instead of run (template.ts). */
  reusedLayers: string[];
}

export interface WatchOptions {
  /**
   * The environments to keep built. Default: the project's own environment (DBFAST_ENV,
   * default_environment, or the only one) and every other environment whose template exists on
   * the server, decided again when dbfast.toml changes. Without configured environments, the base
   * template.
   */
  environments?: string[];
  /** Quiet time after the last change before building; default 300 ms. */
  debounceMs?: number;
  onEvent?: (event: WatchEvent) => void;
  /** Awaited after each successful rebuild, before the next build starts. */
  afterBuild?: (event: BuiltEvent) => Promise<void>;
  /** Callbacks passed to every build (progress, \echo, warnings). */
  build?: Omit<BuildOptions, 'force' | 'recreate' | 'signal'>;
}

export interface ProjectWatcher {
  /**
   * Stops watching, cancels a running build (its scratch database is dropped, the previous
   * template kept) and resolves once nothing runs any more.
   */
  close(): Promise<void>;
}

const DEFAULT_DEBOUNCE_MS = 300;

/** Dotfiles, Emacs' autosaves and vim's write test; chokidar itself skips `~` backups and swap files. */
const EDITOR_FILE = /^\.|^#.*#$|^4913$/;

/**
 * Builds the watched environments' templates now, then again whenever their files or dbfast.toml
 * change. Resolves once the watcher is ready; throws when there is nothing to watch
 * (REPOSITORY_NOT_FOUND, CONFIG_NOT_FOUND) or the environments cannot be chosen (ENVIRONMENT_REQUIRED,
 * unknown names).
 */
export async function watchProject(project: Project, options: WatchOptions = {}): Promise<ProjectWatcher> {
  const emit = options.onEvent ?? (() => {});
  const debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  const abort = new AbortController();
  // A repository that is not there cannot be watched: that is an error now, not in the first build.
  await project.scanRepository();
  let current = { project, environments: await chooseEnvironments(project, options.environments) };
  const changes = new Set<string>();
  let reloadDue = false;
  let again = false;
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;

  const { configPath, stateDir } = project.config;
  const folders = (config: Project['config']) => config.repositories.map((repository) => repository.path);
  const roots = () => [...folders(current.project.config), ...(configPath ? [configPath] : [])];
  const watcher: FSWatcher = watch(roots(), {
    ignoreInitial: true,
    ignored: (path) => !roots().includes(path) && (isWithin(path, stateDir) || EDITOR_FILE.test(basename(path))),
  });
  watcher.on('all', (_event, path) => {
    changes.add(path);
    if (path === configPath) reloadDue = true;
    clearTimeout(timer);
    timer = setTimeout(() => {
      emit({ kind: 'changed', paths: [...changes].map((changed) => relativePosix(project.config.projectDir, changed)).sort() });
      changes.clear();
      request();
    }, debounceMs);
  });
  watcher.on('error', (error) => emit({ kind: 'failed', error }));
  await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));

  const watching = () =>
    emit({ kind: 'watching', paths: roots().map((root) => relativePosix(project.config.projectDir, root)), environments: current.environments.map(describe) });

  async function reload(): Promise<void> {
    const next = await current.project.reload();
    const environments = await chooseEnvironments(next, options.environments);
    const before = folders(current.project.config);
    const after = folders(next.config);
    current = { project: next, environments };
    watcher.unwatch(before.filter((folder) => !after.includes(folder)));
    watcher.add(after.filter((folder) => !before.includes(folder)));
    emit({ kind: 'reloaded', warnings: next.config.warnings });
    watching();
  }

  async function build(environment: Project): Promise<void> {
    const described = describe(environment);
    emit({ kind: 'building', ...described });
    const started = performance.now();
    try {
      // The pool refills in the background: a seed after the rebuild takes a spare.
      const { rebuilt, template, reusedLayers } = await environment.build({ ...options.build, signal: abort.signal, refill: true });
      if (!rebuilt) return emit({ kind: 'unchanged', ...described });
      const { files, statements, rowsCopied } = template;
      const durationMs = Math.round(performance.now() - started);
      const built: BuiltEvent = { kind: 'built', ...described, durationMs, files, statements, rowsCopied, reusedLayers };
      emit(built);
      await options.afterBuild?.(built);
    } catch (error) {
      if (!abort.signal.aborted) emit({ kind: 'failed', ...described, error });
    }
  }

  async function cycle(): Promise<void> {
    if (reloadDue) {
      try {
        await reload();
        reloadDue = false;
      } catch (error) {
        // Building with the old configuration would build what the user is changing: wait for a good file.
        return emit({ kind: 'failed', error });
      }
    }
    for (const environment of current.environments) {
      if (abort.signal.aborted) return;
      await build(environment);
    }
  }

  function request(): void {
    again = true;
    running ??= (async () => {
      while (again && !abort.signal.aborted) {
        again = false;
        await cycle();
      }
    })().finally(() => {
      running = undefined;
    });
  }

  watching();
  request();
  return {
    async close() {
      abort.abort();
      clearTimeout(timer);
      await watcher.close();
      await running;
      // A pool refill cut off mid-copy would leave a spare without its metadata.
      await Promise.all(current.environments.map((environment) => environment.close()));
    },
  };
}

/** See WatchOptions.environments. */
async function chooseEnvironments(project: Project, names: string[] | undefined): Promise<Project[]> {
  if (names) return names.map((name) => project.withEnvironment(name));
  if (Object.keys(project.config.environments).length === 0) return [project];
  // A stopped embedded server cannot say which templates exist; a failure to start shows in the first build.
  await project.server().catch(() => {});
  const states = await project.environments();
  const built = new Set(states.filter((state) => state.state === 'fresh' || state.state === 'stale').map((state) => state.name));
  // With nothing built, the project's own environment is required: ENVIRONMENT_REQUIRED when several and none chosen.
  const own = built.size === 0 ? project.environment : project.chosenEnvironment();
  return states.filter((state) => state.name === own?.name || built.has(state.name)).map((state) => project.withEnvironment(state.name));
}

function describe(project: Project): WatchedEnvironment {
  return { environment: project.environment.name, template: project.templateName };
}

function isWithin(path: string, folder: string): boolean {
  const inner = relative(folder, path);
  return inner.split(sep)[0] !== '..' && !isAbsolute(inner);
}
