import type { ConfigWarning } from '../core/config/index.js';
import { Project } from '../core/project.js';
import type { GlobalOptions } from './globals.js';
import { warn } from './output.js';

/** Opens the project named by --config (or found upward) and shows configuration warnings. */
export async function openProject(globals: GlobalOptions): Promise<Project> {
  const project = await Project.open({ configPath: globals.config, environment: globals.env, onWarning: (message) => warn(message) });
  showConfigWarnings(project.config.warnings);
  return project;
}

export function showConfigWarnings(warnings: ConfigWarning[]): void {
  for (const warning of warnings) warn(`${warning.file}: ${warning.message}`, warning.hint);
}

/** Runs `work` with the project open. */
export async function withProject<T>(globals: GlobalOptions, work: (project: Project) => Promise<T>): Promise<T> {
  return work(await openProject(globals));
}
