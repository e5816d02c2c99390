import { plural } from '../core/plural.js';
import type { ExecutionStats } from '../core/sql/execute.js';
import type { EnsureResult, TemplateInfo } from '../core/template.js';
import type { GlobalOptions } from './globals.js';
import { dim, green, info, printJson } from './output.js';
import { refillDetached } from './pool.js';
import { buildProgress } from './progress.js';
import { withProject } from './project.js';

export async function build(globals: GlobalOptions, options: { force?: boolean; recreate?: boolean; json?: boolean }): Promise<void> {
  await withProject(globals, async (project) => {
    const { done, ...progress } = buildProgress();
    const started = performance.now();
    const result = await project.build({ force: options.force, recreate: options.recreate, refill: false, ...progress }).finally(done);
    printBuild(result, (performance.now() - started) / 1000, options.json);
    if (result.rebuilt) refillDetached(project, globals);
  });
}

function printBuild({ template, rebuilt, stats, reusedLayers, restoredFrom }: EnsureResult, seconds: number, json?: boolean): void {
  if (json) printJson({ template: template.name, rebuilt, ...template, stats: stats ?? null, reusedLayers, restoredFrom: restoredFrom ?? null });
  else if (restoredFrom) info(`${green('restored')} ${template.name} from kept template ${restoredFrom} ${dim(`(built ${template.builtAt}, ${plural(template.files, 'file')})`)}`);
  else if (!rebuilt) info(`${template.name} is up to date ${dim(`(built ${template.builtAt}, ${plural(template.files, 'file')})`)}`);
  else printBuilt(template, stats!, seconds, reusedLayers);
}

function printBuilt(template: TemplateInfo, stats: ExecutionStats, seconds: number, reusedLayers: string[]): void {
  const reused = reusedLayers.length > 0 ? dim(` (reused ${reusedLayers.join(', ')} from checkpoints)`) : '';
  info(
    `${green('built')} ${template.name}: ${plural(stats.files, 'file')}, ${plural(stats.statements, 'statement')}, ` +
      `${plural(stats.rowsCopied, 'row')} copied in ${seconds.toFixed(2)}s${reused}`,
  );
}
