import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, cliEnv, cliProjects, STACK_FRAME, testServerUrl } from '../helpers/cli.js';
import { query, untilBackend } from '../helpers/database.js';
import { writeFiles } from '../helpers/repo.js';

const tracked = cliProjects();
const running: ChildProcess[] = [];
afterEach(() => {
  for (const child of running.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

const schema = {
  'db/0_schema/01_items.sql': 'CREATE TABLE items (id int PRIMARY KEY, name text);',
  'db/1_seed/01_items.sql': "INSERT INTO items VALUES (1, 'one'), (2, 'two');",
};

/** `dbfast watch ARGS` running in `cwd`; `until` waits (up to 60 s) for its output to match. */
function startWatch(cwd: string, args: string[] = []) {
  const child = spawn(process.execPath, [CLI, 'watch', '--debounce', '200ms', ...args], {
    cwd,
    env: cliEnv({ DBFAST_DATABASE_URL: testServerUrl() }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(child);
  const output = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return {
    child,
    output,
    exited,
    /** Waits until `pattern` occurs `count` times on `stream`. */
    until: (stream: 'stdout' | 'stderr', pattern: RegExp, count = 1) =>
      until(() => [...output[stream].matchAll(new RegExp(pattern.source, `${pattern.flags.replace('g', '')}g`))].length >= count, () => `${pattern} on ${stream}:\n${output.stderr}`),
  };
}

/** Waits (up to 60 s) until `condition` holds. */
async function until(condition: () => boolean | Promise<boolean>, what: () => string): Promise<void> {
  for (let waited = 0; !(await condition()); waited += 20) {
    if (waited > 60_000) throw new Error(`waited in vain for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('dbfast watch', () => {
  it('prints a line per rebuild, the error of a broken edit while keeping the template, and runs --exec after each rebuild', async () => {
    const project = await tracked(schema);
    const watch = startWatch(project.root, ['--exec', 'echo "$DBFAST_TEMPLATE" >> exec.log']);
    const rebuilt = /^rebuilt /m;
    await watch.until('stderr', rebuilt);

    await writeFiles(project.root, { 'db/1_seed/02_bad.sql': "SELECT 1;\nINSERT INTO items VALUES (3, 'three'" });
    await watch.until('stderr', /keeping the last good/);
    const clone = `${project.templateName}_check`;
    await query('postgres', `CREATE DATABASE ${clone} TEMPLATE ${project.templateName}`);
    expect(await query(clone, 'SELECT count(*)::int AS n FROM items')).toEqual([{ n: 2 }]);
    await query('postgres', `DROP DATABASE ${clone}`);

    await writeFiles(project.root, { 'db/1_seed/02_bad.sql': "SELECT 1;\nINSERT INTO items VALUES (3, 'three');" });
    await watch.until('stderr', rebuilt, 2);
    const name = project.templateName;
    expect(watch.output.stderr.split('\n')).toEqual([
      `watching db and dbfast.toml for ${name} (Ctrl-C to stop)`,
      expect.stringMatching(new RegExp(`^rebuilt ${name} in \\d+\\.\\d\\ds \\(2 files\\)$`)),
      expect.stringMatching(/^error: db\/1_seed\/02_bad\.sql:2:\d+: syntax error at end of input$/),
      `  keeping the last good ${name}`,
      expect.stringMatching(new RegExp(`^rebuilt ${name} in \\d+\\.\\d\\ds \\(3 files, reused 0_schema\\)$`)),
      '',
    ]);
    // Once after each rebuild, never after the failure.
    const log = () => readFile(join(project.root, 'exec.log'), 'utf8').catch(() => '');
    await until(async () => (await log()).split('\n').length > 2, () => 'two --exec runs');
    expect(await log()).toBe(`${project.templateName}\n${project.templateName}\n`);

    watch.child.kill('SIGINT');
    expect(await watch.exited).toBe(0);
    expect(watch.output.stderr).not.toMatch(STACK_FRAME);
  });

  it('stops on Ctrl-C during a build, leaving no scratch database', async () => {
    const project = await tracked({ ...schema, 'db/1_seed/02_slow.sql': 'SELECT pg_sleep(20);' });
    const watch = startWatch(project.root, ['--json']);
    await untilBackend(`query LIKE '%pg_sleep(20)%' AND state = 'active'`);
    const scratch = `SELECT datname FROM pg_database WHERE datname LIKE '${project.templateName}\\_\\_b%'`;
    expect(await query('postgres', scratch)).toHaveLength(1);

    watch.child.kill('SIGINT');
    expect(await watch.exited).toBe(0);
    expect(await query('postgres', scratch)).toEqual([]);
    expect(await query('postgres', `SELECT 1 FROM pg_database WHERE datname = '${project.templateName}'`)).toEqual([]);
    await untilBackend(`query LIKE '%pg_sleep(20)%'`, { gone: true });
    const events = watch.output.stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(events.map((event) => event.kind)).toEqual(['watching', 'building']);
    expect(watch.output.stderr).not.toMatch(STACK_FRAME);
  });
});
