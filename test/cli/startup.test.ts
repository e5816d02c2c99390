/**
 * What the CLI does before anything else loads (src/cli/startup.ts): no `fetch` implementation
 * loaded by `pg` on Node 20, and compiled code cached on disk where Node can (22+). Runs on every
 * Node the CI uses.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { cliEnv, REPO_ROOT, runCli } from '../helpers/cli.js';

const run = promisify(execFile);
const major = Number(process.versions.node.split('.')[0]);

/** Whether importing pg, after `preamble`, made Node load undici (its fetch implementation). */
async function pgLoadsUndici(preamble: string): Promise<boolean> {
  const script = `${preamble}await import('pg'); console.log(process.moduleLoadList.some((name) => name.includes('undici')));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT, env: cliEnv() });
  return stdout.trim() === 'true';
}

describe('CLI start-up', () => {
  it("loading pg does not load Node's fetch implementation once the CLI's start-up ran", async () => {
    expect(await pgLoadsUndici("await import('./dist/cli/startup.js'); ")).toBe(false);
    // Without it, Node 20 (no navigator) loads undici when pg probes for Cloudflare Workers; Node 21+ does not.
    expect(await pgLoadsUndici('')).toBe(major < 21);
  });

  it('caches compiled code on disk where Node can (22+), and runs without it elsewhere', async () => {
    // Not NODE_COMPILE_CACHE, which would turn the cache on by itself: the default folder, under TMPDIR.
    const temporary = await mkdtemp(join(tmpdir(), 'dbfast-compile-cache-'));
    try {
      const result = await runCli(['--version'], { env: { TMPDIR: temporary, NODE_COMPILE_CACHE: undefined } });
      expect(result.code, result.stderr).toBe(0);
      const written = await readdir(temporary, { recursive: true });
      if (major >= 22) expect(written.length).toBeGreaterThan(0);
      else expect(written).toEqual([]);
    } finally {
      await rm(temporary, { recursive: true, force: true });
    }
  });
});
