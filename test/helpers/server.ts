import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureServer, stopServer } from '../../src/core/server.js';

export interface TestServer {
  port: number;
  stateDir: string;
  stop(): Promise<void>;
}

/** Starts a real PostgreSQL server in a fresh state folder; `stop` removes it again. */
export async function startServer(): Promise<TestServer> {
  const stateDir = await mkdtemp(join(tmpdir(), 'dbfast-test-server-'));
  // mkdtemp makes a private folder; as root the server runs as `postgres`, which must enter it.
  await chmod(stateDir, 0o755);
  const { port } = await ensureServer(stateDir);
  return {
    port,
    stateDir,
    async stop() {
      await stopServer(stateDir);
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}
