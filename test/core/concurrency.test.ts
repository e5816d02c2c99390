import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rename } from 'node:fs/promises';
import { resolve } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { Project } from '../../src/core/project.js';
import { query } from '../helpers/database.js';
import { tempRepo, writeFiles } from '../helpers/repo.js';

const cli = resolve(import.meta.dirname, '../../dist/cli/main.js');
const serverUrl = () => `postgresql://postgres@127.0.0.1:${inject('serverPort')}/postgres`;
let project: Project | undefined;

afterAll(async () => {
  await project?.clean({ all: true });
});

interface SeedOutput {
  code: number | null;
  stdout: string;
  stderr: string;
}

function seedProcess(cwd: string): Promise<SeedOutput> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [cli, 'seed', '--json'], {
      cwd,
      env: { ...process.env, DBFAST_DATABASE_URL: serverUrl(), NO_COLOR: '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

describe('concurrent seeds', () => {
  it('16 processes with a file change in the middle: all succeed, one rebuild, never a stale clone', async () => {
    const templateName = `c_${randomBytes(4).toString('hex')}`;
    const root = await tempRepo({
      'dbfast.toml': `[database]\ntemplate_name = "${templateName}"\n`,
      'db/0_schema/a.sql': 'CREATE TABLE version (v text);',
      'db/1_seed/b.sql': "INSERT INTO version VALUES ('old');",
    });
    project = await Project.open({ cwd: root, env: { DBFAST_DATABASE_URL: serverUrl() } });
    await project.build();

    const before = Array.from({ length: 8 }, () => seedProcess(root));
    await new Promise((done) => setTimeout(done, 100));
    // Atomic, as editors save: a half-written file would be a third version, rightly built too.
    await writeFiles(root, { 'db/1_seed/b.sql.tmp': "INSERT INTO version VALUES ('new');\nSELECT pg_sleep(0.3);" });
    await rename(resolve(root, 'db/1_seed/b.sql.tmp'), resolve(root, 'db/1_seed/b.sql'));
    const after = Array.from({ length: 8 }, () => seedProcess(root));
    const outputs = await Promise.all([...before, ...after]);

    for (const output of outputs) expect(output, output.stderr).toMatchObject({ code: 0 });
    const results = outputs.map((output) => JSON.parse(output.stdout) as { database: string; rebuilt: boolean });
    expect(results.filter((result) => result.rebuilt)).toHaveLength(1);
    const versions = [];
    for (const result of results) versions.push((await query<{ v: string }>(result.database, 'SELECT v FROM version'))[0]!.v);
    expect(versions.every((v) => v === 'old' || v === 'new')).toBe(true);
    expect(versions.slice(8)).toEqual(Array(8).fill('new'));
  });
});
