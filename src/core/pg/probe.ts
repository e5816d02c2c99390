/** Asking a server whether it answers, for displays that report an unreachable server instead of failing. */
import { withClient } from './client.js';
import type { ServerTarget } from './target.js';

export interface ServerProbe {
  reachable: boolean;
  version: string | null;
  /** Why it could not be asked (never containing a password). */
  error: string | null;
}

export async function probeServer(target: ServerTarget): Promise<ServerProbe> {
  try {
    const version = await withClient(target, async (client) => {
      return (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
    });
    return { reachable: true, version, error: null };
  } catch (error) {
    return { reachable: false, version: null, error: (error as Error).message };
  }
}
