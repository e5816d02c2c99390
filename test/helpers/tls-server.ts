/**
 * A real server that speaks TLS with a certificate from a test CA (made with openssl), for the
 * sslmode and certificate-file paths. The certificate names only `db.test`, so a client that checks
 * the host name (verify-full, connecting to 127.0.0.1) must refuse it and one that does not may accept it.
 */
import { execFile } from 'node:child_process';
import { chmod, chown, copyFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { query } from './database.js';
import { startServer, type TestServer } from './server.js';

const run = promisify(execFile);

export interface TlsServer extends TestServer {
  /** The CA certificate that signed the server's. */
  caFile: string;
}

export async function startTlsServer(): Promise<TlsServer> {
  const server = await startServer();
  try {
    const dir = server.stateDir;
    const ca = join(dir, 'ca');
    const cert = join(dir, 'server');
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=dbfast test CA', '-keyout', `${ca}.key`, '-out', `${ca}.crt`]);
    await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=db.test', '-keyout', `${cert}.key`, '-out', `${cert}.csr`]);
    await run('openssl', ['x509', '-req', '-in', `${cert}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '2', '-out', `${cert}.crt`]);
    // The server runs as the owner of its data folder and wants its key private to it.
    const data = join(dir, 'server', 'data');
    const owner = await stat(data);
    for (const file of ['server.crt', 'server.key']) {
      await copyFile(join(dir, file), join(data, file));
      await chown(join(data, file), owner.uid, owner.gid);
    }
    await chmod(join(data, 'server.key'), 0o600);
    await query('postgres', 'ALTER SYSTEM SET ssl = on', server.port);
    await query('postgres', 'SELECT pg_reload_conf()', server.port);
    await untilTls(server.port);
    return { ...server, caFile: `${ca}.crt` };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

async function untilTls(port: number): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const [row] = await query<{ on: string }>('postgres', "SELECT current_setting('ssl') AS on", port);
    if (row?.on === 'on') return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the server on port ${port} did not turn TLS on`);
}
