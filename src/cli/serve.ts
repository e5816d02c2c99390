import { startServe } from '../core/serve/api.js';
import type { GlobalOptions } from './globals.js';
import { dim, formatError, info, printData, printJson } from './output.js';
import { openProject } from './project.js';
import { untilStopped } from './signals.js';

interface ServeFlags {
  port?: number;
  host: string;
  initialPoolSize?: number;
  maxPoolSize?: number;
  json?: boolean;
}

/**
 * Serves until SIGINT or SIGTERM; prints its URL on stdout (the only line there, so that `$(...)`
 * and `--port 0` work), the rest on stderr.
 */
export async function serve(globals: GlobalOptions, flags: ServeFlags): Promise<void> {
  const verbose = Boolean(globals.verbose || process.env.DBFAST_DEBUG);
  const project = await openProject(globals);
  const running = await startServe(project, {
    host: flags.host,
    port: flags.port,
    initialPoolSize: flags.initialPoolSize,
    maxPoolSize: flags.maxPoolSize,
    onError: (error) => info(formatError(error, verbose)),
  });
  if (flags.json) printJson({ url: running.url, port: running.port });
  else printData(running.url);
  info(dim(`serving IntegreSQL API v1 and /api/dbfast/v1 on ${running.url} (Ctrl-C to stop)`));
  await untilStopped();
  info(dim('stopping: finishing requests and copies under way'));
  await running.close();
  await project.close();
}
