/**
 * A second real server that asks for a password (scram-sha-256), for the authentication paths
 * the trust-auth shared server cannot exercise.
 */
import { chown, stat, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { query } from './database.js';
import { startServer, type TestServer } from './server.js';

export interface ScramServer extends TestServer {
  user: 'postgres';
  password: string;
}

export async function startScramServer(password = 'right-pass'): Promise<ScramServer> {
  const server = await startServer();
  try {
    // The password first, while trust still lets us in; then switch every TCP login to scram.
    await query('postgres', `ALTER ROLE postgres PASSWORD '${password.replaceAll("'", "''")}'`, server.port);
    const hba = join(server.stateDir, 'server', 'data', 'pg_hba.conf');
    const owner = await stat(hba);
    await writeFile(hba, 'host all all 127.0.0.1/32 scram-sha-256\n');
    // Written as root the file would become root's; the server (user postgres) must keep reading it.
    await chown(hba, owner.uid, owner.gid);
    await query('postgres', 'SELECT pg_reload_conf()', server.port);
    await untilPasswordRequired(server.port);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return { ...server, user: 'postgres', password };
}

/** pg_reload_conf() only signals the postmaster: wait until a login without password is refused. */
async function untilPasswordRequired(port: number): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const refused = await query('postgres', 'SELECT 1', port).then(
      () => false,
      () => true,
    );
    if (refused) return;
    await sleep(50);
  }
  throw new Error(`the server on port ${port} still accepts logins without a password`);
}
