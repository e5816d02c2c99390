import { DbfastError } from '../core/errors.js';
import type { GlobalOptions } from './globals.js';
import { dim, info, printData, printJson } from './output.js';
import { refillDetached } from './pool.js';
import { buildProgress } from './progress.js';
import { withProject } from './project.js';

export async function seed(globals: GlobalOptions, options: { output?: string; replace?: boolean; recreate?: boolean; json?: boolean }): Promise<void> {
  if (options.replace && options.output === undefined) {
    throw new DbfastError('USAGE', '--replace needs --output NAME', { hint: 'generated names are always new' });
  }
  await withProject(globals, async (project) => {
    const { done, ...progress } = buildProgress();
    const result = await project
      .seed({ name: options.output, replace: options.replace, recreate: options.recreate, refill: false, ...progress })
      .finally(done);
    if (options.json) printJson(result);
    else {
      if (result.rebuilt) info(dim(`rebuilt ${result.template} in ${(result.timings.build_ms / 1000).toFixed(2)}s`));
      printData(result.url);
    }
    refillDetached(project, globals);
  });
}
