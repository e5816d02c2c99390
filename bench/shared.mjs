/** What the benchmarks share: a connection, a clean environment, a timed process. */
import { spawn } from 'node:child_process';
import pg from 'pg';

/** Runs `use` on a new connection to `database`, always closed. */
export async function withClient(server, database, use) {
  const client = new pg.Client({ host: server.host, port: server.port, user: server.user, database });
  // Stopping the server (Ctrl-C) ends idle connections with an 'error' event that would crash the process
  // before run.mjs removes its folder; a query on the dead client still rejects.
  client.on('error', () => {});
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

/** The environment without PG* and DBFAST_* variables, for dbfast and the PostgreSQL programs alike. */
export function cleanEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('PG') && !key.startsWith('DBFAST_')));
}

/** Milliseconds a process takes to exit 0; rejects with its stderr otherwise. */
export function timeProcess(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], ...options });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(performance.now() - started) : reject(new Error(`${command} ${args.join(' ')} failed: ${stderr}`))));
  });
}
