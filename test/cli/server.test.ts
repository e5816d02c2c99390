import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { stopServer } from '../../src/core/server.js';
import { type CliResult, lines, type RunOptions, runCli, STACK_FRAME, uniqueName } from '../helpers/cli.js';
import { tempRepo } from '../helpers/repo.js';

const stateDirs: string[] = [];

afterAll(async () => {
  for (const dir of stateDirs) {
    await stopServer(dir).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
});

/** A private state folder that the `postgres` OS user (used when running as root) can enter. */
async function freshStateDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dbfast-cli-state-'));
  await chmod(dir, 0o755);
  stateDirs.push(dir);
  return dir;
}

/** `dbfast server ...` against `stateDir`, with no configured server. */
function server(stateDir: string, ...args: string[]): Promise<CliResult> {
  return runCli(['server', ...args], { cwd: stateDir, env: { DBFAST_STATE_DIR: stateDir } });
}

/** Processes whose command line is the postmaster of `dataDir`. */
async function postmasters(dataDir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    const argv = cmdline.split('\0');
    if (argv.includes(dataDir) && /postgres$/.test(argv[0] ?? '')) pids.push(Number(entry));
  }
  return pids;
}

async function connects(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one;
  } finally {
    await client.end();
  }
}

const STARTED = /^(started|already running): PostgreSQL 15 on 127\.0\.0\.1:(\d+)$/;

/** A project with one SQL file and no server configured; removed after the run. */
async function project(): Promise<string> {
  const root = await tempRepo({
    'dbfast.toml': `[database]\ntemplate_name = "${uniqueName()}"\n`,
    'db/0_schema/01.sql': 'CREATE TABLE items (id int);\n',
  });
  stateDirs.push(root);
  return root;
}

/** Another program listening on `port` of 127.0.0.1, until `close`. */
async function occupy(port: number): Promise<Server> {
  const blocker = createServer();
  await new Promise<void>((resolve, reject) => {
    blocker.once('error', reject);
    blocker.listen(port, '127.0.0.1', resolve);
  });
  return blocker;
}

function close(blocker: Server): Promise<unknown> {
  return new Promise((resolve) => blocker.close(resolve));
}

describe('dbfast server', () => {
  it('status, start, url, a seed on the embedded server, stop', async () => {
    const stateDir = await freshStateDir();
    const dataDir = join(stateDir, 'server', 'data');

    const none = await server(stateDir, 'status');
    expect(none.code).toBe(1);
    // The report the user asked for goes to stdout, as with --json.
    expect(none.stdout).toBe('not created yet (starts on first use)\n');
    expect(none.stderr).toBe('');
    const noneJson = await server(stateDir, 'status', '--json');
    expect(noneJson.code).toBe(1);
    expect(JSON.parse(noneJson.stdout)).toMatchObject({ running: false, initialized: false, url: null });

    const started = await server(stateDir, 'start');
    expect(started.code).toBe(0);
    expect(started.stdout).toBe('');
    const [, how, portText] = STARTED.exec(started.errLines[0] ?? '') ?? [];
    expect(how).toBe('started');
    const port = Number(portText);

    const running = await server(stateDir, 'status', '--json');
    expect(running.code).toBe(0);
    const status = JSON.parse(running.stdout);
    expect(status).toMatchObject({ running: true, initialized: true, version: '15', port, url: `postgresql://postgres@127.0.0.1:${port}/postgres` });
    expect(await postmasters(dataDir)).toEqual([status.pid]);
    const runningText = await server(stateDir, 'status');
    expect(runningText.code).toBe(0);
    expect(runningText.stdout).toBe(`running: PostgreSQL 15 on 127.0.0.1:${port} (pid ${status.pid}, data ${dataDir})\n`);
    expect(runningText.stderr).toBe('');

    const url = await server(stateDir, 'url');
    expect(url.code).toBe(0);
    expect(url.stdout).toBe(`postgresql://postgres@127.0.0.1:${port}/postgres\n`);
    expect(await connects(lines(url.stdout)[0]!)).toBe(1);
    expect((await server(stateDir, 'url', 'other_db')).stdout).toBe(`postgresql://postgres@127.0.0.1:${port}/other_db\n`);

    const again = await server(stateDir, 'start');
    expect(again.code).toBe(0);
    expect(again.errLines).toEqual([`already running: PostgreSQL 15 on 127.0.0.1:${port}`]);

    // With nothing configured, seed uses this embedded server.
    const root = await tempRepo({
      'dbfast.toml': `[database]\ntemplate_name = "${uniqueName()}"\n`,
      'db/0_schema/01.sql': 'CREATE TABLE items (id int);\nINSERT INTO items VALUES (42);\n',
    });
    stateDirs.push(root);
    const seeded = await runCli(['seed'], { cwd: root, env: { DBFAST_STATE_DIR: stateDir } });
    expect(seeded.code).toBe(0);
    expect(seeded.stdout).toMatch(new RegExp(`^postgresql://postgres@127\\.0\\.0\\.1:${port}/cli_\\w+\\n$`));
    const client = new pg.Client({ connectionString: lines(seeded.stdout)[0] });
    await client.connect();
    expect((await client.query('SELECT id FROM items')).rows).toEqual([{ id: 42 }]);
    await client.end();

    const stopped = await server(stateDir, 'stop');
    expect(stopped.code).toBe(0);
    expect(stopped.errLines).toEqual(['stopped']);
    const after = await server(stateDir, 'status');
    expect(after.code).toBe(1);
    expect(after.stdout).toBe(`stopped (data ${dataDir})\n`);
    expect(JSON.parse((await server(stateDir, 'status', '--json')).stdout)).toMatchObject({ running: false, url: null });
    expect(await postmasters(dataDir)).toEqual([]);
    expect((await server(stateDir, 'stop')).errLines).toEqual(['not running']);
  });

  it('two concurrent starts in a fresh state folder share one server', async () => {
    const stateDir = await freshStateDir();
    const results = await Promise.all([server(stateDir, 'start'), server(stateDir, 'start')]);
    const ports = results.map((result) => {
      expect(result.code).toBe(0);
      expect(result.stderr).not.toMatch(/error/);
      return STARTED.exec(result.errLines[0] ?? '')?.slice(1);
    });
    expect(ports.map((match) => match?.[0]).sort()).toEqual(['already running', 'started']);
    expect(ports[0]?.[1]).toBeDefined();
    expect(ports[0]?.[1]).toBe(ports[1]?.[1]);

    const status = JSON.parse((await server(stateDir, 'status', '--json')).stdout);
    expect(status).toMatchObject({ running: true, port: Number(ports[0]?.[1]) });
    expect(await postmasters(join(stateDir, 'server', 'data'))).toEqual([status.pid]);
  });

  it('start --port on a port another program listens on fails with exit 1 and names the port', async () => {
    const stateDir = await freshStateDir();
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const result = await server(stateDir, 'start', '--port', String(port));
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.errLines[0]).toBe(`error: port ${port} on 127.0.0.1 is already in use`);
      expect(result.stderr).not.toMatch(STACK_FRAME);
      expect((await server(stateDir, 'status')).code).toBe(1);
      expect(await postmasters(join(stateDir, 'server', 'data'))).toEqual([]);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it('refuses an invalid --port with exit 2 and leaves the state folder usable', async () => {
    const stateDir = await freshStateDir();
    for (const port of ['70000', '0', '-5', 'abc']) {
      const result = await server(stateDir, 'start', '--port', port);
      expect(result.code, port).toBe(2);
      expect(result.errLines[0]).toContain('expected a port number from 1 to 65535');
    }
    const started = await server(stateDir, 'start');
    expect(started.code).toBe(0);
    expect((await server(stateDir, 'stop')).code).toBe(0);
  });
});

describe('the embedded server', () => {
  it('moves to a free port when another program took the remembered one, and the CLI says so', async () => {
    const stateDir = await freshStateDir();
    const first = Number(STARTED.exec((await server(stateDir, 'start')).errLines[0] ?? '')?.[2]);
    expect((await server(stateDir, 'stop')).code).toBe(0);
    const blockers = [await occupy(first)];
    try {
      // seed starts the server through the library (Project), which passes the warning up.
      const seeded = await runCli(['seed'], { cwd: await project(), env: { DBFAST_STATE_DIR: stateDir } });
      expect(seeded.code, seeded.stderr).toBe(0);
      const second = Number(/^postgresql:\/\/postgres@127\.0\.0\.1:(\d+)\//.exec(seeded.stdout)?.[1]);
      expect(second).not.toBe(first);
      expect(seeded.errLines.filter((line) => line.startsWith('warning:'))).toEqual([
        `warning: port ${first} is taken; the embedded server moves to port ${second}`,
      ]);
      expect(JSON.parse((await server(stateDir, 'status', '--json')).stdout)).toMatchObject({ running: true, port: second });

      // server start, from the CLI's own call.
      expect((await server(stateDir, 'stop')).code).toBe(0);
      blockers.push(await occupy(second));
      const started = await server(stateDir, 'start');
      expect(started.code).toBe(0);
      const third = Number(STARTED.exec(started.errLines[1] ?? '')?.[2]);
      expect(started.errLines).toEqual([
        `warning: port ${second} is taken; the embedded server moves to port ${third}`,
        `started: PostgreSQL 15 on 127.0.0.1:${third}`,
      ]);
      expect([first, second]).not.toContain(third);
    } finally {
      await server(stateDir, 'stop');
      for (const blocker of blockers) await close(blocker);
    }
  });

  it('DBFAST_PG_BIN naming a missing folder: seed and server start fail at once, exit 1, naming it', async () => {
    const stateDir = await freshStateDir();
    const root = await project();
    for (const args of [['seed'], ['server', 'start'], ['server', 'url']]) {
      const result = await runCli(args, { cwd: root, env: { DBFAST_STATE_DIR: stateDir, DBFAST_PG_BIN: '/nope' } });
      expect(result.code, args.join(' ')).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.errLines).toEqual([
        'error: initdb, pg_ctl, postgres not found in DBFAST_PG_BIN (/nope)',
        '  hint: point DBFAST_PG_BIN to a PostgreSQL bin folder with initdb, pg_ctl, postgres, or unset it to use the embedded PostgreSQL',
      ]);
    }
    expect(existsSync(join(stateDir, 'server'))).toBe(false);
  });

  it('[tools] pg_bin_dir is where the embedded server programs come from, relative to dbfast.toml', async () => {
    const stateDir = await freshStateDir();
    const root = await tempRepo({ 'dbfast.toml': '[tools]\npg_bin_dir = "no/bin"\n', 'db/a.sql': 'SELECT 1;' });
    stateDirs.push(root);
    const result = await runCli(['seed'], { cwd: root, env: { DBFAST_STATE_DIR: stateDir } });
    expect(result.code).toBe(1);
    expect(result.errLines).toEqual([
      `error: initdb, pg_ctl, postgres not found in [tools] pg_bin_dir (${join(root, 'no/bin')})`,
      '  hint: point [tools] pg_bin_dir to a PostgreSQL bin folder with initdb, pg_ctl, postgres, or unset it to use the embedded PostgreSQL',
    ]);
    expect(existsSync(join(stateDir, 'server'))).toBe(false);
  });
});

describe('a state folder dbfast cannot write fails at once, exit 1, naming it and why', () => {
  const FROM_ENV_HINT = '  hint: set DBFAST_STATE_DIR to a folder you can write';

  async function seed(stateDir: string, options: RunOptions = {}): Promise<CliResult> {
    const result = await runCli(['seed'], { cwd: await project(), ...options, env: { DBFAST_STATE_DIR: stateDir, ...options.env } });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).not.toMatch(STACK_FRAME);
    return result;
  }

  it('/proc/nope, where mkdir answers ENOENT', async () => {
    // Node's recursive mkdir retries /proc/nope forever, at 100% CPU: timeout(1) ends a relapse.
    const wrapper = ['timeout', '15'];
    const expected = ['error: cannot use the state folder /proc/nope (DBFAST_STATE_DIR): /proc does not allow creating folders', FROM_ENV_HINT];
    expect((await seed('/proc/nope', { wrapper })).errLines).toEqual(expected);
    const url = await runCli(['server', 'url'], { cwd: await project(), wrapper, env: { DBFAST_STATE_DIR: '/proc/nope/deeper' } });
    expect(url.code).toBe(1);
    expect(url.errLines[0]).toBe('error: cannot use the state folder /proc/nope/deeper (DBFAST_STATE_DIR): /proc does not allow creating folders');
  });

  it('a path through a regular file', async () => {
    const root = await project();
    expect((await seed(join(root, 'dbfast.toml', 'state'))).errLines).toEqual([
      `error: cannot use the state folder ${join(root, 'dbfast.toml', 'state')} (DBFAST_STATE_DIR): ${join(root, 'dbfast.toml')} is a file, not a folder`,
      FROM_ENV_HINT,
    ]);
  });

  it('a read-only file system (a tmpfs mounted read-only in a private mount namespace)', async () => {
    const mountPoint = await freshStateDir();
    // unshare -r maps the caller to root in a new user namespace, which may mount there, unprivileged too.
    const wrapper = ['unshare', '-r', '-m', 'sh', '-c', 'mount -t tmpfs -o ro tmpfs "$0" && exec "$@"', mountPoint];
    expect((await seed(mountPoint, { wrapper })).errLines).toEqual([
      `error: cannot use the state folder ${mountPoint} (DBFAST_STATE_DIR): ${mountPoint} is on a read-only file system`,
      FROM_ENV_HINT,
    ]);
  });

  it('the default .dbfast in a project folder without write permission', async () => {
    const root = await project();
    await chmod(root, 0o555);
    // root may write anywhere: as root, the CLI runs as the postgres user to meet the permission.
    const wrapper = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : [];
    const result = await seed('', { cwd: root, wrapper, env: { DBFAST_STATE_DIR: undefined } });
    await chmod(root, 0o755);
    expect(result.errLines).toEqual([
      `error: cannot use the state folder ${join(root, '.dbfast')}: no write permission in ${root}`,
      '  hint: the state folder is .dbfast in the project folder by default; make that writable, or set DBFAST_STATE_DIR to a folder you can write',
    ]);
  });
});

describe('dbfast server with a configured server', () => {
  const port = inject('serverPort');
  const shown = `postgresql://postgres@127.0.0.1:${port}/postgres`;

  it('status and url describe it and start nothing; start and stop refuse with exit 2', async () => {
    const root = await project();
    const options = { cwd: root, env: { DBFAST_DATABASE_URL: `postgresql://postgres:not-shown@127.0.0.1:${port}/postgres` } };
    const cli = (...args: string[]) => runCli(['server', ...args], options);

    const status = await cli('status');
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`^configured: PostgreSQL 15\\.\\d+ at ${shown}\n$`));
    const json = await cli('status', '--json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      embedded: false,
      url: shown,
      address: `postgres@127.0.0.1:${port}`,
      reachable: true,
      version: expect.stringMatching(/^15\.\d+$/),
      error: null,
    });

    expect((await cli('url')).stdout).toBe(`${shown}\n`);
    expect((await cli('url', 'other_db')).stdout).toBe(`postgresql://postgres@127.0.0.1:${port}/other_db\n`);

    for (const command of ['start', 'stop']) {
      const refused = await cli(command);
      expect(refused.code, command).toBe(2);
      expect(refused.errLines).toEqual([
        `error: dbfast server ${command} manages the embedded server; this project uses the configured server postgres@127.0.0.1:${port}`,
        '  hint: start and stop that server where it runs; the embedded one serves only when no server is configured ([database] url or host, DBFAST_DATABASE_URL, PGHOST)',
      ]);
      expect(refused.stderr + refused.stdout).not.toContain('not-shown');
    }
    expect(status.stderr + json.stdout).not.toContain('not-shown');
    expect(existsSync(join(root, '.dbfast'))).toBe(false);
  });

  it('[database] url of a server that does not answer: status says why, exit 1', async () => {
    const root = await tempRepo({ 'dbfast.toml': '[database]\nurl = "postgresql://postgres@127.0.0.1:1/postgres"\n' });
    stateDirs.push(root);
    const status = await runCli(['server', 'status'], { cwd: root });
    expect(status.code).toBe(1);
    expect(status.stdout).toBe(
      'configured: postgresql://postgres@127.0.0.1:1/postgres, not usable: cannot reach PostgreSQL at postgres@127.0.0.1:1 (ECONNREFUSED)\n',
    );
    expect(JSON.parse((await runCli(['server', 'status', '--json'], { cwd: root })).stdout)).toMatchObject({ embedded: false, reachable: false });
    expect(existsSync(join(root, '.dbfast'))).toBe(false);
  });

  it('a configured database that does not exist: seed and status name it and the server, exit 1', async () => {
    const env = { DBFAST_DATABASE_URL: `postgresql://postgres@127.0.0.1:${port}/no_such_db` };
    const root = await project();
    const missing = `database "no_such_db" does not exist on postgres@127.0.0.1:${port}`;
    const seeded = await runCli(['seed'], { cwd: root, env });
    expect(seeded.code).toBe(1);
    expect(seeded.stdout).toBe('');
    expect(seeded.errLines).toEqual([`error: ${missing}`, '  hint: check DBFAST_DATABASE_URL: it names the database dbfast connects to']);
    const status = await runCli(['server', 'status'], { cwd: root, env });
    expect(status.code).toBe(1);
    expect(status.stdout).toBe(`configured: postgresql://postgres@127.0.0.1:${port}/no_such_db, not usable: ${missing}\n`);
  });
});
