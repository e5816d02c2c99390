import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { stopServer } from '../../src/core/server.js';
import { type CliResult, lines, runCli, STACK_FRAME, uniqueName } from '../helpers/cli.js';
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
