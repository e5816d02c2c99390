import { plural } from '../core/plural.js';
import type { GlobalOptions } from './globals.js';
import { dim, green, info, printJson } from './output.js';
import { buildProgress } from './progress.js';
import { withProject } from './project.js';

export async function build(globals: GlobalOptions, options: { force?: boolean; recreate?: boolean; json?: boolean }): Promise<void> {
  await withProject(globals, async (project) => {
    const { done, ...progress } = buildProgress();
    const started = performance.now();
    const result = await project.build({ force: options.force, recreate: options.recreate, ...progress }).finally(done);
    const { template, rebuilt, stats } = result;
    if (options.json) return printJson({ template: template.name, rebuilt, ...template, stats: stats ?? null });
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    if (!rebuilt) return info(`${template.name} is up to date ${dim(`(built ${template.builtAt}, ${plural(template.files, 'file')})`)}`);
    info(
      `${green('built')} ${template.name}: ${plural(stats!.files, 'file')}, ${plural(stats!.statements, 'statement')}, ` +
        `${plural(stats!.rowsCopied, 'row')} copied in ${seconds}s`,
    );
  });
}
