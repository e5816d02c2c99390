import { mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config/index.js';
import { DbfastError } from '../../src/core/errors.js';
import { testRemote } from '../../src/core/remote.js';
import { type ScramServer, startScramServer } from '../helpers/scram-server.js';

// A second real server that asks for passwords, as a remote would.
const PASSWORD = 'remote-pass-7b1';
const DEPLOY_PASSWORD = 'deploy-pass-c44';
let remote: ScramServer;
let root: string;

async function asSuperuser(sql: string, database = 'postgres') {
  const client = new pg.Client({ host: '127.0.0.1', port: remote.port, user: 'postgres', password: PASSWORD, database });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  remote = await startScramServer(PASSWORD);
  // deploy may log in but not create databases, and cannot read payroll.
  await asSuperuser(`CREATE ROLE deploy LOGIN PASSWORD '${DEPLOY_PASSWORD}'`);
  await asSuperuser('CREATE DATABASE app');
  await asSuperuser('CREATE TABLE public.payroll (id int); CREATE TABLE public.open (id int); GRANT SELECT ON public.open TO deploy', 'app');
  root = await realpath(await mkdtemp(path.join(os.tmpdir(), 'dbfast-remote-test-')));
}, 60_000);

afterAll(async () => {
  await remote?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

async function check(remoteToml: string, env: NodeJS.ProcessEnv = {}, attempts = 1) {
  await writeFile(path.join(root, 'dbfast.toml'), `[remotes.staging]\n${remoteToml}\n`);
  const config = await loadConfig({ cwd: root, env });
  return testRemote(config, 'staging', { env: { PATH: process.env.PATH, ...env }, attempts, retryDelayMs: 10 });
}

const url = (user: string, database = 'app', port?: number) => `url = "postgresql://${user}@127.0.0.1:${port ?? remote.port}/${database}"`;

function failed(result: Awaited<ReturnType<typeof testRemote>>) {
  return result.checks.filter((item) => !item.ok).map(({ check, message, hint }) => ({ check, message, hint }));
}

describe('testRemote', () => {
  it('passes every check for a superuser with the right password', async () => {
    const result = await check(`${url('postgres')}\npassword_env = "REMOTE_PW"`, { REMOTE_PW: PASSWORD });
    expect(failed(result)).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.checks.map((item) => item.check)).toEqual(['reachable', 'authentication', 'database', 'version', 'pg_dump', 'pg_restore', 'privileges']);
    expect(result.serverVersion).toMatch(/^15\./);
    expect(result.databaseSizeBytes).toBeGreaterThan(0);
    expect(result.missingPrivileges).toEqual([]);
    expect(result.url).toBe(`postgresql://postgres@127.0.0.1:${remote.port}/app`);
  });

  it('a wrong password fails authentication in PostgreSQL words, with a hint naming the variable', async () => {
    const result = await check(`${url('postgres')}\npassword_env = "REMOTE_PW"`, { REMOTE_PW: 'wrong-guess-991' });
    expect(result.ok).toBe(false);
    expect(failed(result)).toEqual([
      { check: 'authentication', message: 'password authentication failed for user "postgres"', hint: 'check $REMOTE_PW' },
    ]);
    expect(JSON.stringify(result)).not.toMatch(/wrong-guess-991|remote-pass/);
  });

  it('a password variable that is not set is a configuration error naming it', async () => {
    const error = await check(`${url('postgres')}\npassword_env = "REMOTE_PW"`).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DbfastError);
    expect((error as DbfastError).code).toBe('CONFIG_INVALID');
    expect((error as DbfastError).message).toBe('remotes.staging.password_env names REMOTE_PW, which is not set');
  });

  it('a port nobody listens on is refused, with the address', async () => {
    const port = await closedPort();
    const result = await check(url('postgres', 'app', port), {}, 2);
    expect(failed(result)).toEqual([
      { check: 'reachable', message: `connection refused at 127.0.0.1:${port}`, hint: 'is the server running? check host and port in [remotes.staging]' },
    ]);
  });

  it('a server that never answers times out after connect_timeout_ms', async () => {
    const silent = await silentServer();
    try {
      const result = await check(`${url('postgres', 'app', silent.port)}\nconnect_timeout_ms = 300`);
      expect(failed(result)).toEqual([
        {
          check: 'reachable',
          message: `no answer from 127.0.0.1:${silent.port} within 300 ms`,
          hint: 'is a firewall dropping the connection? a slow server needs a larger connect_timeout_ms in [remotes.staging]',
        },
      ]);
    } finally {
      await silent.close();
    }
  });

  it('an unknown database is named, after the login succeeded', async () => {
    const result = await check(`${url('postgres', 'nope')}\npassword_env = "REMOTE_PW"`, { REMOTE_PW: PASSWORD });
    expect(result.checks.map((item) => [item.check, item.ok])).toEqual([
      ['reachable', true],
      ['authentication', true],
      ['database', false],
    ]);
    expect(failed(result)[0]?.message).toBe(`database "nope" does not exist on 127.0.0.1:${remote.port}`);
  });

  it('a user who may not create databases and cannot read a table is told what is missing', async () => {
    const result = await check(`${url('deploy')}\npassword_env = "DEPLOY_PW"`, { DEPLOY_PW: DEPLOY_PASSWORD });
    expect(result.ok).toBe(false);
    expect(result.missingPrivileges).toEqual(['create databases (or own the database)', 'SELECT on 1 table (public.payroll)']);
    expect(failed(result)).toEqual([
      {
        check: 'privileges',
        message: 'deploy lacks create databases (or own the database) and SELECT on 1 table (public.payroll)',
        hint: 'as a superuser: ALTER ROLE deploy CREATEDB; GRANT pg_read_all_data TO deploy',
      },
    ]);
  });

  it('owning the database is enough without CREATEDB', async () => {
    await asSuperuser('CREATE DATABASE owned OWNER deploy');
    const result = await check(`${url('deploy', 'owned')}\npassword_env = "DEPLOY_PW"`, { DEPLOY_PW: DEPLOY_PASSWORD });
    expect(failed(result)).toEqual([]);
    expect(result.checks.find((item) => item.check === 'privileges')?.message).toBe('deploy: owns the database, reads every table');
  });

  it('retries a connection the network dropped, a bounded number of times', async () => {
    const outcome = async (attempts: number) => {
      const flaky = await dropsFirstConnection(remote.port);
      try {
        return await check(`${url('postgres', 'app', flaky.port)}\npassword_env = "REMOTE_PW"`, { REMOTE_PW: PASSWORD }, attempts);
      } finally {
        await flaky.close();
      }
    };
    expect((await outcome(1)).checks[0]).toMatchObject({ check: 'reachable', ok: false });
    expect(failed(await outcome(2))).toEqual([]);
  });

  it('an unknown remote is a usage error with a suggestion', async () => {
    await writeFile(path.join(root, 'dbfast.toml'), '[remotes.staging]\nhost = "h"\n[remotes.production]\nhost = "h"\n');
    const config = await loadConfig({ cwd: root, env: {} });
    const error = await testRemote(config, 'stagign', { env: {} }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'USAGE', message: 'unknown remote "stagign"', hint: 'did you mean "staging"? available: staging, production' });
  });
});

/** A port that was free a moment ago: nothing listens on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A real TCP server on a free port; `close` also hangs up every connection it saw. */
async function tcpServer(onConnection: (socket: Socket, track: (other: Socket) => void) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets: Socket[] = [];
  const server: Server = createServer((socket) => {
    sockets.push(socket);
    onConnection(socket, (other) => sockets.push(other));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Accepts connections and never says a word, like a server behind a black-holing firewall. */
function silentServer() {
  return tcpServer(() => {});
}

/** A TCP proxy to `port` that hangs up on its first connection: a flaky network. */
function dropsFirstConnection(port: number) {
  let count = 0;
  return tcpServer((socket, track) => {
    if (count++ === 0) return socket.destroy();
    const upstream = connect(port, '127.0.0.1');
    track(upstream);
    socket.pipe(upstream).pipe(socket);
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
}
