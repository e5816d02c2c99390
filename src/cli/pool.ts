import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { plural } from '../core/plural.js';
import type { Project } from '../core/project.js';
import type { GlobalOptions } from './globals.js';
import { info, printJson } from './output.js';
import { withProject } from './project.js';

export async function fill(globals: GlobalOptions, options: { json?: boolean }): Promise<void> {
  await withProject(globals, async (project) => {
    const result = await project.fillPool();
    if (options.json) return printJson(result);
    if (result.stopped) return info(`nothing to fill: ${result.stopped}`);
    if (result.busy) return info(`another process is filling the pool of ${project.templateName}`);
    info(`pool of ${project.templateName}: ${plural(result.created.length, 'spare')} made, ${plural(result.dropped.length, 'stale spare')} dropped`);
  });
}

export async function drain(globals: GlobalOptions, options: { json?: boolean }): Promise<void> {
  await withProject(globals, async (project) => {
    const dropped = await project.drainPool();
    if (options.json) return printJson({ dropped });
    info(`pool of ${project.templateName}: ${plural(dropped.length, 'spare')} dropped`);
  });
}

/**
 * Refills the pool from a detached `dbfast pool fill`, so that the command's output never waits for
 * the copies; it outlives this process and reports nothing (a failed refill only means the next seed copies).
 */
export function refillDetached(project: Project, globals: GlobalOptions): void {
  if (project.config.performance.poolSize === 0) return;
  const main = fileURLToPath(new URL('./main.js', import.meta.url));
  const args = [main, ...(globals.config ? ['--config', globals.config] : []), ...(globals.env ? ['--env', globals.env] : []), 'pool', 'fill'];
  spawn(process.execPath, args, { detached: true, stdio: 'ignore', cwd: process.cwd() }).unref();
}
