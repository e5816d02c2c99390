#!/usr/bin/env node
/**
 * The dbfast command line: parses flags, calls the library, prints. Each command's module is
 * imported only when that command runs, to keep start-up fast.
 */
// First: it changes how everything after it loads.
import './startup.js';
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { exitCodeFor } from '../core/errors.js';
import type { GlobalOptions } from './globals.js';
import { errorJson, formatError, info, printJson } from './output.js';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command('dbfast')
  .description('Seeded PostgreSQL databases in milliseconds, from a repository of SQL files.')
  .version(version, '-V, --version')
  .option('-c, --config <path>', 'path to dbfast.toml (default: searched upward from the current folder)')
  .option('-e, --env <name>', 'environment to build, seed or show (default: DBFAST_ENV, default_environment, or the only one)')
  .option('--verbose', 'show details and stack traces of errors')
  .showHelpAfterError('(run dbfast --help for usage)')
  .exitOverride()
  .addHelpText(
    'after',
    `
Exit codes: 0 ok, 1 failure, 2 usage or configuration error.
Environment: DBFAST_DATABASE_URL, DBFAST_ENV, DBFAST_STATE_DIR, DBFAST_PG_BIN, NO_COLOR, and the libpq
variables PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE (plus ~/.pgpass).`,
  );

const RECREATE =
  'when a rebuild is due, first drop the template, its clones and the roles its builds created ' +
  '(for files that create roles); until the build succeeds there is no template, and a failed build leaves none';

function parseCount(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError('expected a whole number (0 or more)');
  return Number(text);
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65535) {
    throw new InvalidArgumentError('expected a port number from 1 to 65535');
  }
  return port;
}

/** Runs one command: known errors become one message and an exit code, no stack trace. */
function action<A extends unknown[]>(load: () => Promise<(globals: GlobalOptions, ...args: A) => Promise<unknown>>) {
  return async (...args: A) => {
    const globals = program.opts<GlobalOptions>();
    try {
      const command = await load();
      const exitCode = await command(globals, ...args);
      process.exitCode = typeof exitCode === 'number' ? exitCode : 0;
    } catch (error) {
      info(formatError(error, Boolean(globals.verbose || process.env.DBFAST_DEBUG)));
      // Commander passes the command's options second to last.
      if ((args.at(-2) as { json?: boolean } | undefined)?.json) printJson({ error: errorJson(error) });
      process.exitCode = exitCodeFor(error);
    }
  };
}

program
  .command('init')
  .description('write a commented dbfast.toml for this folder')
  .option(
    '--repo-dir <dir>',
    'the SQL repository folder (default: found here or in db/, sql/, database/, migrations/, schema/; else db)',
  )
  .option('--template-name <name>', 'name of the template database')
  .option('--force', 'overwrite an existing dbfast.toml')
  .action(action(async () => (await import('./init.js')).init));

program
  .command('build')
  .description('build the template database from the SQL files (only when they changed)')
  .option('--force', 'rebuild even when nothing changed')
  .option('--recreate', RECREATE)
  .option('--json', 'print the result as JSON')
  .action(action(async () => (await import('./build.js')).build));

program
  .command('seed')
  .description('print the URL of a new database cloned from the up-to-date template')
  .option('-o, --output <name>', 'name of the new database (default: <template>_<id>)')
  .option('--replace', 'drop and recreate the database if a dbfast clone of that name exists')
  .option('--recreate', RECREATE)
  .option('--json', 'print a JSON object instead of the URL')
  .action(action(async () => (await import('./seed.js')).seed));

program
  .command('watch')
  .description('rebuild templates whenever the SQL files or dbfast.toml change, until Ctrl-C')
  .option('--debounce <duration>', 'quiet time after the last change before building (default 300ms)')
  .option('--exec <command>', 'a shell command to run after each successful rebuild (DBFAST_TEMPLATE and DBFAST_ENV set)')
  .option('--json', 'print each event as one JSON object per line')
  .addHelpText(
    'after',
    `
Watches -e's environment only; otherwise the default one and every environment whose template exists.
A failed build prints its error and keeps the last good template. Ctrl-C cancels a running build.`,
  )
  .action(action(async () => (await import('./watch.js')).watch));

program
  .command('list')
  .description("list this template's clones")
  .option('--all', 'every clone dbfast made on the server, of any project')
  .option('--json', 'print JSON')
  .action(action(async () => (await import('./clones.js')).list));

program
  .command('drop')
  .description('drop databases dbfast cloned (terminating their connections)')
  .argument('<names...>', 'clone names')
  .action(action(async () => (await import('./clones.js')).drop));

program
  .command('clean')
  .description("drop this template's clones: old ones, all but the newest, or all; or with --gc what no run needs")
  .option('--older-than <duration>', 'only clones created longer ago than this (30m, 12h, 7d)')
  .addOption(new Option('--keep-last <n>', 'always keep the n newest clones').argParser(parseCount))
  .option('--all', 'every clone of this template, whatever its age (not with --older-than)')
  .option('--gc', 'garbage collection for every environment: orphans, stale spares, kept templates, expired clones, max_disk (alone)')
  .option('--dry-run', 'with --gc: print what it would drop, drop nothing')
  .option('--json', 'with --gc: print the result as JSON')
  .option('--serve', 'the templates and test databases dbfast serve made on this server, when no dbfast serve runs (alone)')
  .action(action(async () => (await import('./clones.js')).clean));

program
  .command('status')
  .description('server, repository (changed since the build?), template and clones')
  .option('--json', 'print JSON')
  .option('--check-remotes', 'also ask each remote for its version (exit 1 when one cannot be asked)')
  .addHelpText('after', '\nWith --verbose (before or after the command), also the files changed since the build.')
  .action(action(async () => (await import('./status.js')).status));

program
  .command('environments')
  .description('every environment: file count and template state (missing, fresh, stale)')
  .option('--json', 'print JSON')
  .addHelpText('after', '\nWith --verbose (before or after the command), also the rules and the selected files.')
  .action(action(async () => (await import('./environments.js')).environments));

const pool = program
  .command('pool')
  .description('the warm pool: spare clones made ahead, so that seed is a rename ([performance] pool_size)');

pool
  .command('fill')
  .description('drop stale spares and make new ones until pool_size are ready (seed and build start this in the background)')
  .option('--json', 'print JSON')
  .action(action(async () => (await import('./pool.js')).fill));

pool
  .command('drain')
  .description('drop every spare of the template')
  .option('--json', 'print JSON')
  .action(action(async () => (await import('./pool.js')).drain));

const remote = program.command('remote').description('named remote servers ([remotes.NAME] in dbfast.toml)');

remote
  .command('list')
  .description('every remote: URL (password masked), environment and deploy safety settings')
  .option('--json', 'print JSON')
  .addHelpText('after', '\nWith --verbose (before or after the command), also where each password comes from.')
  .action(action(async () => (await import('./remote.js')).remoteList));

remote
  .command('add')
  .description('write a [remotes.NAME] table into dbfast.toml, keeping everything else in the file as it is')
  .usage('--name NAME --url URL --env ENVIRONMENT [options]')
  .addHelpText('after', '\n--env ENVIRONMENT (the global option) names the environment deployed to it; it is required.')
  .requiredOption('--name <name>', 'the remote\'s name (letters, digits, _ and -)')
  .requiredOption('--url <url>', 'postgresql://user@host:port/database (keep the password out: --password-env)')
  .option('--password-env <variable>', 'the environment variable holding its password')
  .option('--allow-destructive', 'let deploys drop or replace its data')
  .option('--no-backup', 'no backup before each deploy')
  .option('--require-confirmation', 'ask before each deploy (the default for production and prod)')
  .option('--force', 'replace a remote of that name')
  .action(action(async () => (await import('./remote.js')).remoteAdd));

remote
  .command('remove')
  .description('remove a remote\'s table from dbfast.toml, nothing else')
  .argument('<name>', 'the remote')
  .action(action(async () => (await import('./remote.js')).remoteRemove));

remote
  .command('test')
  .alias('check')
  .description('connect to a remote and check what deploy and backup need: login, version, pg_dump, privileges')
  .argument('<name>', 'the remote, as named in dbfast.toml')
  .option('--json', 'print JSON')
  .addHelpText('after', '\nExit code 0 only when everything deploy and backup need is in place, 1 otherwise.')
  .action(action(async () => (await import('./remote.js')).remoteTest));

program
  .command('repo')
  .description('the SQL repositories ([repository], or [[repositories]] built one after the other)')
  .command('list')
  .description('each repository in build order: name, folder, file count, and how many files each environment selects')
  .option('--json', 'print JSON')
  .action(action(async () => (await import('./repositories.js')).repoList));

const backup = program
  .command('backup')
  .description('backups with pg_dump: create, list, verify, restore, prune')
  .addHelpText('after', `
Backups are kept in [backups] directory (default .dbfast/backups/<remote>/), each an archive and its
metadata (SHA-256, tables, row counts). Every archive is read back whole before it counts as a backup.`);

function parseJobs(text: string): number {
  const jobs = parseCount(text);
  if (jobs < 1) throw new InvalidArgumentError('expected 1 or more');
  return jobs;
}

backup
  .command('create')
  .description('back up a remote\'s database (or a database of the local server) and verify it')
  .usage('--remote NAME | --database NAME [options]')
  .option('--remote <name>', 'the remote to back up (its configured database unless --database)')
  .option('--database <name>', 'the database: of the local server, or of the remote with --remote')
  .option('--label <text>', 'a note kept with the backup')
  .addOption(new Option('--format <format>', 'archive format (default: [backups] format, else custom)').choices(['custom', 'directory']))
  .addOption(new Option('--jobs <n>', 'parallel pg_dump jobs (directory format)').argParser(parseJobs))
  .option('--json', 'print the backup\'s metadata as JSON')
  .addHelpText('after', '\nPrints the backup\'s id on stdout.')
  .action(action(async () => (await import('./backup.js')).backupCreate));

backup
  .command('list')
  .description('backups, newest first: size, age, reason and whether they were found sound')
  .option('--remote <name>', 'only this remote\'s')
  .option('--json', 'print JSON')
  .action(action(async () => (await import('./backup.js')).backupList));

backup
  .command('verify')
  .description('check a backup\'s SHA-256 and read the whole archive; --restore also restores it into a scratch database')
  .argument('[id]', 'the backup (a unique prefix of its id is enough)')
  .option('--all', 'every backup')
  .option('--restore', 'restore into a scratch database of the local server, compare tables and rows, run [validation]')
  .option('--json', 'print JSON')
  .addHelpText('after', '\nExit code 1 when any backup is not sound.')
  .action(action(async () => (await import('./backup.js')).backupVerify));

backup
  .command('restore')
  .description('restore a backup, atomically: into a new database swapped in by rename (or in one transaction)')
  .argument('<id>', 'the backup (a unique prefix of its id is enough)')
  .option('--remote <name>', 'restore onto this remote (default: where the backup came from)')
  .option('--to-database <name>', 'restore under this database name')
  .option('--yes', 'replace an existing database without asking')
  .addOption(new Option('--jobs <n>', 'parallel pg_restore jobs').argParser(parseJobs))
  .option('--json', 'print the result as JSON')
  .addHelpText('after', `
A database that is replaced is backed up first and kept as <name>__dbfast_prev_<time> until pruned.
On a terminal you are asked before a database is replaced; elsewhere --yes is required.`)
  .action(action(async () => (await import('./backup.js')).backupRestore));

backup
  .command('prune')
  .description('remove old backups: keeps the newest N and the young ones, and always a sound one per source')
  .option('--remote <name>', 'only this remote\'s backups (and its __dbfast_prev databases)')
  .addOption(new Option('--keep-last <n>', 'keep the newest N of each source (default: [backups] keep_last)').argParser(parseJobs))
  .option('--older-than <age>', 'remove only backups older than this: 12h, 30d, 2w (default: [backups] max_age)')
  .option('--dry-run', 'show what would be removed')
  .option('--json', 'print JSON')
  .action(action(async () => (await import('./backup.js')).backupPrune));

const deploy = program
  .command('deploy')
  .description("put an environment's database onto a remote: replace it whole (checked, then swapped in) or apply only its new files in one transaction")
  .argument('<remote>', 'the remote, as named in dbfast.toml')
  .addOption(
    new Option('--mode <mode>', "replace: the template's database swapped in; migrate: only the files not applied there, its data kept").choices(['replace', 'migrate']),
  )
  .option('--strict', 'migrate: refuse when a file applied before has changed since, or a new one sorts before applied ones (default: a warning)')
  .option('--baseline', "migrate: record the files as applied without running them, if the remote's schema is already the template's")
  .addOption(new Option('--jobs <n>', 'replace: parallel pg_restore jobs into the new database (default: up to 4, one per CPU)').argParser(parseJobs))
  .option('--yes', 'confirm without asking (a remote with require_confirmation; --skip-backup)')
  .option('--skip-backup', 'no backup first, on a remote with backup_before_deploy (needs --yes)')
  .option('--dry-run', 'print the plan and change nothing')
  .option('--force-env', "deploy an environment (-e) other than the remote's")
  .option('--allow-drift', "go on when the deployed schema differs from the template's")
  .option('--json', 'print the plan or the result as JSON')
  .addHelpText(
    'after',
    `
The environment is the remote's (-e must match it, unless --force-env); production-like environments must pass
validate-env --strict. The mode is replace when allow_destructive = true or the remote's database has no tables,
else migrate. Replace: backed up first (backup_before_deploy), the old database kept as <name>__dbfast_prev_<time>.
Migrate: the files dbfast.applied_files lacks run in one transaction (a file with CREATE INDEX CONCURRENTLY or
VACUUM runs alone), each statement waiting at most [deploy] lock_timeout for a lock (then retried); [validation]
and the schema check run before it commits. Prints the deploy's id on stdout.`,
  )
  .action(action(async () => (await import('./deploy.js')).deployCommand));

deploy
  .command('rollback')
  .description('undo the last deploy to a remote: swap the database it replaced back in, else restore its pre-deploy backup')
  .argument('<remote>', 'the remote, as named in dbfast.toml')
  .option('--yes', 'confirm without asking')
  .option('--json', 'print the result as JSON')
  .action(action(async () => (await import('./deploy.js')).rollbackCommand));

deploy
  .command('history')
  .description("a remote's deploys, oldest first, as its dbfast.deployments records them (else as this machine does)")
  .argument('<remote>', 'the remote, as named in dbfast.toml')
  .option('--json', 'print JSON')
  .action(action(async () => (await import('./deploy.js')).historyCommand));

program
  .command('diff')
  .description("compare a remote's schema with its environment's template: tables, columns, constraints, indexes, views, functions, ...")
  .argument('<remote>', 'the remote, as named in dbfast.toml')
  .option('--json', 'print JSON')
  .addHelpText('after', "\nThe environment is the remote's unless -e names another; its template is rebuilt first when its files changed.\nExit code 0 when they match, 1 when they differ.")
  .action(action(async () => (await import('./diff.js')).diff));

program
  .command('validate-env')
  .description("check an environment's rules: unknown folders, empty selections, dev data in production")
  .argument('[name]', 'the environment (or --env)')
  .option('--strict', 'treat warnings as errors (for CI)')
  .option('--json', 'print JSON')
  .action(action(async () => (await import('./environments.js')).validateEnv));

program
  .command('serve')
  .description('serve test databases over HTTP: IntegreSQL API v1 (its clients work unchanged) and /api/dbfast/v1/seed')
  .addOption(new Option('--port <port>', 'TCP port, 0 for a free one (default: INTEGRESQL_PORT or 5000)').argParser((text) => (text === '0' ? 0 : parsePort(text))))
  .option('--host <address>', 'address to listen on; other than loopback, DBFAST_SERVE_TOKEN is required', '127.0.0.1')
  .addOption(new Option('--initial-pool-size <n>', 'ready copies per template (default: INTEGRESQL_TEST_INITIAL_POOL_SIZE or the CPU count)').argParser(parseCount))
  .addOption(new Option('--max-pool-size <n>', 'copies per template at most (default: INTEGRESQL_TEST_MAX_POOL_SIZE or 4 per CPU)').argParser(parseCount))
  .option('--json', 'print {"url", "port"} instead of the URL')
  .action(action(async () => (await import('./serve.js')).serve));

const server = program.command('server').description('manage the embedded PostgreSQL server, or show the configured one');
server
  .command('start')
  .description('start the embedded server (done automatically on first use)')
  .addOption(new Option('--port <port>', 'TCP port on 127.0.0.1 (default: a free one, then remembered)').argParser(parsePort))
  .action(action(async () => (await import('./server.js')).start));
server
  .command('stop')
  .description('stop the embedded server')
  .action(action(async () => (await import('./server.js')).stop));
server
  .command('status')
  .description('show whether the embedded server runs, and where (a configured server: whether it answers)')
  .option('--json', 'print JSON')
  .action(action(async () => (await import('./server.js')).status));
server
  .command('url')
  .description("print the server's URL, without password (the embedded server is started if needed)")
  .argument('[database]', 'database name (default: postgres, or the configured maintenance database)')
  .action(action(async () => (await import('./server.js')).urlCommand));

try {
  await program.parseAsync();
} catch (error) {
  if (!(error instanceof CommanderError)) throw error;
  // Help and version are not failures; every other parsing error is a usage error.
  const done = error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help';
  process.exitCode = done ? 0 : 2;
}
