import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CLI, cliEnv, REPO_ROOT, runCli } from '../helpers/cli.js';
import { tempRepo } from '../helpers/repo.js';

const { version } = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };

describe('dbfast --version and --help', () => {
  it("--version prints package.json's version and exits 0", async () => {
    const result = await runCli(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${version}\n`);
  });

  it('--help lists the commands and exits 0', async () => {
    const result = await runCli(['--help']);
    expect(result.code).toBe(0);
    for (const command of ['init', 'build', 'seed', 'list', 'drop', 'server']) {
      expect(result.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    }
    expect(result.stdout).toContain('Exit codes: 0 ok, 1 failure, 2 usage or configuration error.');
  });

  it('server --help lists its subcommands', async () => {
    const result = await runCli(['server', '--help']);
    expect(result.code).toBe(0);
    for (const command of ['start', 'stop', 'status', 'url']) expect(result.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
  });
});

describe('usage errors', () => {
  it.each([
    [['--bogus'], "error: unknown option '--bogus'"],
    [['seed', '--bogus'], "error: unknown option '--bogus'"],
    [['frobnicate'], "error: unknown command 'frobnicate'"],
    [['seed', '-o'], "error: option '-o, --output <name>' argument missing"],
    [['drop'], "error: missing required argument 'names'"],
  ])('dbfast %j exits 2 with a one-line error on stderr and nothing on stdout', async (args, message) => {
    const result = await runCli(args);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.errLines[0]).toBe(message);
    expect(result.errLines.filter((line) => line.startsWith('error:'))).toHaveLength(1);
    // At most a pointer to --help follows the error line.
    expect(result.errLines.slice(1)).toEqual(['(run dbfast --help for usage)']);
  });
});

describe('colour', () => {
  // A missing config is the cheapest error that reaches formatError.
  const args = ['-c', 'missing.toml', 'list'];

  it('paints "error:" red when FORCE_COLOR asks for colour', async () => {
    const result = await runCli(args, { env: { NO_COLOR: undefined, FORCE_COLOR: '1' } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('\u001b[31merror:\u001b[0m');
  });

  it('paints only streams that are terminals: a report piped from a terminal has no colour codes', async () => {
    const root = await tempRepo({
      'dbfast.toml': '[database]\ntemplate_name = "painted"\n[environments.local]\ninclude_directories = ["0"]\n',
      'db/0/a.sql': 'SELECT 1;',
    });
    // util-linux script(1) runs the command on a pseudo-terminal: stderr stays one, stdout goes to cat.
    const onTerminal = (command: string) =>
      promisify(execFile)('script', ['-qec', `"${process.execPath}" "${CLI}" environments${command}`, '/dev/null'], {
        cwd: root,
        env: cliEnv({ NO_COLOR: undefined, TERM: 'xterm', DBFAST_DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/postgres' }),
      });
    try {
      expect((await onTerminal('')).stdout).toContain('\u001b[1mlocal\u001b[0m');
      expect((await onTerminal(' | cat')).stdout).toBe('local\t1 file\tpainted_local\tunknown\r\n');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('never colours with NO_COLOR, even with FORCE_COLOR', async () => {
    const result = await runCli(args, { env: { NO_COLOR: '1', FORCE_COLOR: '1' } });
    expect(result.code).toBe(2);
    expect(result.stderr).not.toContain('\u001b[');
    expect(result.errLines[0]).toMatch(/^error: /);
  });
});
