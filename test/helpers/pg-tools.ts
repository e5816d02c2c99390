/**
 * pg_dump and pg_restore for the backup suites. In CI they must be there (.ci/run installs them):
 * a missing one fails the run. On a developer machine without them the suites skip, saying why.
 */
import { findProgram } from '../../src/core/tools.js';

const missing = await Promise.all(
  (['pg_dump', 'pg_restore'] as const).map((name) => findProgram(name, { minMajor: 15 }).then(() => null, (error: Error) => error.message)),
).then((problems) => problems.filter((problem) => problem !== null));

if (missing.length > 0) {
  if (process.env.CI) throw new Error(`CI must run the backup tests: ${missing.join('; ')}`);
  console.warn(`skipping the backup tests: ${missing.join('; ')}`);
}

/** True when pg_dump and pg_restore 15+ are installed; pass to describe.skipIf(!hasPgTools). */
export const hasPgTools = missing.length === 0;
