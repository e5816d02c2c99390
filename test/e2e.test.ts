/**
 * The whole workflow, as a user runs it on a fresh machine: the real binary, its own embedded
 * server, nothing configured but the SQL files. Grows with each capability (remotes, backups and deploys, replace and migrate, serve).
 */
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { queryUrl } from './helpers/database.js';
import { tempRepo, writeFiles } from './helpers/repo.js';
import { startScramServer } from './helpers/scram-server.js';
import { call, startServe } from './helpers/serve.js';

const cleanup: string[] = [];
let env: Record<string, string> = {};

afterAll(async () => {
  if (env.DBFAST_STATE_DIR) await runCli(['server', 'stop'], { cwd: cleanup[0], env });
  for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
});

describe('end to end', () => {
  it('init, seed on the embedded server, edit a file or an included one, seed rebuilds, the clone has the change', async () => {
    const root = await tempRepo({
      'db/0_schema/01_tables.sql': 'CREATE TABLE notes (id int PRIMARY KEY, body text);',
      'db/1_seed/01_notes.sql': "COPY notes FROM stdin;\n1\tfirst\n\\.\n",
    });
    const stateDir = await mkdtemp(join(tmpdir(), 'dbfast-e2e-state-'));
    await chmod(stateDir, 0o755);
    cleanup.push(root, stateDir);
    env = { DBFAST_STATE_DIR: stateDir };

    expect((await runCli(['init'], { cwd: root, env })).code).toBe(0);

    const first = await runCli(['seed'], { cwd: root, env });
    expect(first.code, first.stderr).toBe(0);
    const firstUrl = first.stdout.trim();
    // init proposed environments with local as the default: the clone comes from <name>_template_local.
    expect(firstUrl).toMatch(/^postgresql:\/\/postgres@127\.0\.0\.1:\d+\/\w+_template_local_[0-9a-f]{8}$/);
    expect(await queryUrl(firstUrl, 'SELECT body FROM notes')).toEqual([{ body: 'first' }]);

    await writeFile(join(root, 'db/1_seed/02_more.sql'), "INSERT INTO notes VALUES (2, 'second');");
    const status = JSON.parse((await runCli(['status', '--json'], { cwd: root, env })).stdout);
    expect(status.repository).toMatchObject({ changed: true, changedFiles: { added: ['1_seed/02_more.sql'] } });

    const second = await runCli(['seed', '--json'], { cwd: root, env });
    expect(second.code, second.stderr).toBe(0);
    const seeded = JSON.parse(second.stdout);
    expect(seeded.rebuilt).toBe(true);
    expect(await queryUrl(seeded.url, 'SELECT body FROM notes ORDER BY id')).toEqual([{ body: 'first' }, { body: 'second' }]);
    expect(await queryUrl(firstUrl, 'SELECT count(*)::int AS n FROM notes')).toEqual([{ n: 1 }]);

    // A file outside the repository, included with \ir, and database properties set by the files.
    await writeFiles(root, {
      'db/1_seed/03_included.sql':
        "\\ir ../../shared/notes.inc\nALTER DATABASE :\"DBNAME\" SET app.greeting = 'hello';\nCOMMENT ON DATABASE :\"DBNAME\" IS 'notes app';\n",
      'shared/notes.inc': "INSERT INTO notes VALUES (3, 'third');\n",
    });
    const third = JSON.parse((await runCli(['seed', '--json'], { cwd: root, env })).stdout);
    expect(third.rebuilt).toBe(true);
    const properties = "SELECT current_setting('app.greeting') AS greeting, shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = current_database()";
    expect(await queryUrl(third.url, properties)).toEqual([{ greeting: 'hello', comment: 'notes app' }]);

    await writeFile(join(root, 'shared/notes.inc'), "INSERT INTO notes VALUES (3, 'third, edited');\n");
    const fourth = JSON.parse((await runCli(['seed', '--json'], { cwd: root, env })).stdout);
    expect(fourth.rebuilt).toBe(true);
    expect(await queryUrl(fourth.url, 'SELECT body FROM notes WHERE id = 3')).toEqual([{ body: 'third, edited' }]);
    expect(JSON.parse((await runCli(['seed', '--json'], { cwd: root, env })).stdout).rebuilt).toBe(false);

    const list = JSON.parse((await runCli(['list', '--json'], { cwd: root, env })).stdout);
    expect(list).toHaveLength(5);
    expect((await runCli(['clean', '--keep-last', '1'], { cwd: root, env })).code).toBe(0);
    const left = JSON.parse((await runCli(['list', '--json'], { cwd: root, env })).stdout);
    expect(left).toHaveLength(1);

    // A remote, next to be deployed to: added to dbfast.toml, checked for real, removed without a trace.
    const remote = await startScramServer('e2e-remote-pass');
    try {
      const before = await readFile(join(root, 'dbfast.toml'), 'utf8');
      const remoteEnv = { ...env, STAGING_PW: 'e2e-remote-pass' };
      const url = `postgresql://postgres@127.0.0.1:${remote.port}/postgres`;
      const add = await runCli(['remote', 'add', '--name', 'staging', '--url', url, '--env', 'production', '--password-env', 'STAGING_PW'], { cwd: root, env: remoteEnv });
      expect(add.code, add.stderr).toBe(0);
      const checked = await runCli(['remote', 'test', 'staging', '--json'], { cwd: root, env: remoteEnv });
      expect(checked.code, checked.stdout).toBe(0);
      expect(JSON.parse(checked.stdout)).toMatchObject({ name: 'staging', ok: true });

      // The clone backed up, restored onto the remote as a new database, changed there, and put back from a backup of it.
      const local = await runCli(['backup', 'create', '--database', left[0].name, '--label', 'e2e'], { cwd: root, env: remoteEnv });
      expect(local.code, local.stderr).toBe(0);
      const restored = await runCli(['backup', 'restore', local.stdout.trim(), '--remote', 'staging', '--to-database', 'notes', '--json'], { cwd: root, env: remoteEnv });
      expect(restored.code, restored.stderr).toBe(0);
      expect(JSON.parse(restored.stdout)).toMatchObject({ remote: 'staging', database: 'notes', method: 'created' });
      const remoteNotes = `postgresql://postgres:e2e-remote-pass@127.0.0.1:${remote.port}/notes`;
      const notes = 'SELECT id, body FROM notes ORDER BY id';
      const kept = new URL(fourth.url);
      kept.pathname = `/${left[0].name}`;
      const expected = await queryUrl(kept.href, notes);
      expect(await queryUrl(remoteNotes, notes)).toEqual(expected);
      const onRemote = await runCli(['backup', 'create', '--remote', 'staging', '--database', 'notes'], { cwd: root, env: remoteEnv });
      expect(onRemote.code, onRemote.stderr).toBe(0);
      await queryUrl(remoteNotes, 'DELETE FROM notes');
      const back = await runCli(['backup', 'restore', onRemote.stdout.trim(), '--yes'], { cwd: root, env: remoteEnv });
      expect(back.code, back.stderr).toBe(0);
      expect(await queryUrl(remoteNotes, notes)).toEqual(expected);
      const listed = JSON.parse((await runCli(['backup', 'list', '--json'], { cwd: root, env: remoteEnv })).stdout);
      expect(listed.map((backup: { reason: string }) => backup.reason)).toEqual(['pre-restore', 'manual', 'manual']);

      // Deployed: production (the schema, no seed data) onto a second database of the remote, with no drift after.
      const liveUrl = `postgresql://postgres@127.0.0.1:${remote.port}/live`;
      const addLive = await runCli(['remote', 'add', '--name', 'live', '--url', liveUrl, '--env', 'production', '--password-env', 'STAGING_PW', '--allow-destructive'], { cwd: root, env: remoteEnv });
      expect(addLive.code, addLive.stderr).toBe(0);
      const deployed = await runCli(['deploy', 'live', '--yes', '--json'], { cwd: root, env: remoteEnv });
      expect(deployed.code, deployed.stderr).toBe(0);
      expect(JSON.parse(deployed.stdout)).toMatchObject({ remote: 'live', environment: 'production', method: 'created' });
      const remoteLive = `postgresql://postgres:e2e-remote-pass@127.0.0.1:${remote.port}/live`;
      expect(await queryUrl(remoteLive, 'SELECT count(*)::int AS n FROM notes')).toEqual([{ n: 0 }]);
      expect((await runCli(['diff', 'live'], { cwd: root, env: remoteEnv })).code).toBe(0);

      // The application writes there; a schema file is added; migrate applies only it, the rows kept.
      await queryUrl(remoteLive, "INSERT INTO notes VALUES (100, 'written on live')");
      await writeFile(join(root, 'db/0_schema/02_tags.sql'), 'CREATE TABLE tags (note int REFERENCES notes, tag text NOT NULL);');
      const migrated = await runCli(['deploy', 'live', '--mode', 'migrate', '--yes', '--json'], { cwd: root, env: remoteEnv });
      expect(migrated.code, migrated.stderr).toBe(0);
      expect(JSON.parse(migrated.stdout)).toMatchObject({ mode: 'migrate', method: 'migrate', files: ['0_schema/02_tags.sql'] });
      expect(await queryUrl(remoteLive, 'SELECT id FROM notes')).toEqual([{ id: 100 }]);
      expect((await runCli(['diff', 'live'], { cwd: root, env: remoteEnv })).code).toBe(0);
      const history = JSON.parse((await runCli(['deploy', 'history', 'live', '--json'], { cwd: root, env: remoteEnv })).stdout);
      expect(history.deployments.map((entry: { mode: string; outcome: string }) => `${entry.mode} ${entry.outcome}`)).toEqual(['replace succeeded', 'migrate succeeded']);
      expect((await runCli(['remote', 'remove', 'live'], { cwd: root, env: remoteEnv })).code).toBe(0);

      expect((await runCli(['remote', 'remove', 'staging'], { cwd: root, env: remoteEnv })).code).toBe(0);
      expect(await readFile(join(root, 'dbfast.toml'), 'utf8')).toBe(before);
    } finally {
      await remote.stop();
    }

    // Served: a client with nothing but the URL gets a clone of the files as they are now (the tags file added above).
    const serving = await startServe(root, env);
    try {
      const served = await call(serving.url, 'POST', '/api/dbfast/v1/seed', {});
      expect(served.status).toBe(200);
      const { url, rebuilt } = served.body as { url: string; rebuilt: boolean };
      expect(rebuilt).toBe(true);
      expect(await queryUrl(url, "SELECT count(*)::int AS n FROM pg_class WHERE relname = 'tags'")).toEqual([{ n: 1 }]);
      const template = await call(serving.url, 'POST', '/api/v1/templates', { hash: 'e2e' });
      expect(template.status).toBe(200);
      expect((await call(serving.url, 'PUT', '/api/v1/templates/e2e')).status).toBe(204);
      expect((await call(serving.url, 'GET', '/api/v1/templates/e2e/tests')).status).toBe(200);
    } finally {
      expect(await serving.stop()).toBe(0);
    }
    expect((await runCli(['clean', '--serve'], { cwd: root, env })).stderr).toMatch(/dropped dbfast_serve_/);
  });
});
