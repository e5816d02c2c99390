import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type DbfastConfig, displayPath, findConfigFile, loadConfig, parseConnectionUrl } from '../../src/core/config/index.js';
import { parseConfigText } from '../../src/core/config/parse.js';
import { DbfastError } from '../../src/core/errors.js';

let root: string;

beforeEach(async () => {
  // realpath: on macOS the temp folder is reached through a symlink.
  root = await realpath(await mkdtemp(path.join(os.tmpdir(), 'dbfast-config-')));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function project(toml: string, dir = root): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'dbfast.toml'), toml);
  return dir;
}

function load(toml: string, env: NodeJS.ProcessEnv = {}): Promise<DbfastConfig> {
  return project(toml).then((cwd) => loadConfig({ cwd, env }));
}

async function loadError(toml: string, env: NodeJS.ProcessEnv = {}): Promise<DbfastError> {
  const error = await load(toml, env).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(DbfastError);
  return error as DbfastError;
}

/** Every field of the error, as a program or `--json` output could show it. */
function everything(error: DbfastError): string {
  return JSON.stringify({ ...error, message: error.message });
}

describe('finding dbfast.toml', () => {
  it('searches upward from the start directory', async () => {
    await project('');
    const nested = path.join(root, 'a', 'b');
    await mkdir(nested, { recursive: true });
    expect(findConfigFile(nested)).toBe(path.join(root, 'dbfast.toml'));
  });

  it('returns null when no folder up to the root has one', async () => {
    expect(findConfigFile(root)).toBeNull();
  });

  it('fails with CONFIG_NOT_FOUND when --config names a missing file, naming it once', async () => {
    await expect(loadConfig({ cwd: root, configPath: 'missing.toml', env: {} })).rejects.toMatchObject({
      code: 'CONFIG_NOT_FOUND',
      message: 'config file not found',
      file: 'missing.toml',
    });
  });

  it('uses --config relative to cwd and takes the project folder from it', async () => {
    const dir = await project('[repository]\npath = "sql"\n', path.join(root, 'elsewhere'));
    const config = await loadConfig({ cwd: root, configPath: 'elsewhere/dbfast.toml', env: {} });
    expect(config.configPath).toBe(path.join(dir, 'dbfast.toml'));
    expect(config.projectDir).toBe(dir);
    expect(config.repositories[0]?.path).toBe(path.join(dir, 'sql'));
  });

  it('resolves paths against the config file folder, not cwd', async () => {
    await project(
      [
        '[database]',
        'host = "localhost"',
        'password_file = "secrets/pw"',
        '[repository]',
        'path = "../shared/db"',
        '[backups]',
        'directory = "dumps"',
      ].join('\n'),
    );
    const cwd = path.join(root, 'deep', 'inside');
    await mkdir(cwd, { recursive: true });
    const config = await loadConfig({ cwd, env: {} });
    expect(config.configPath).toBe(path.join(root, 'dbfast.toml'));
    expect(config.projectDir).toBe(root);
    expect(config.repositories[0]?.path).toBe(path.join(path.dirname(root), 'shared', 'db'));
    expect(config.database?.passwordFile).toBe(path.join(root, 'secrets', 'pw'));
    expect(config.backups.directory).toBe(path.join(root, 'dumps'));
    expect(config.stateDir).toBe(path.join(root, '.dbfast'));
  });
});

describe('defaults', () => {
  it('without a file: embedded server, ./db, a template named after the folder', async () => {
    const cwd = path.join(root, 'My Shop-API');
    await mkdir(cwd);
    const config = await loadConfig({ cwd, env: {} });
    expect(config).toEqual({
      configPath: null,
      projectDir: cwd,
      stateDir: path.join(cwd, '.dbfast'),
      database: null,
      templateName: 'my_shop_api_template',
      repositories: [{ path: path.join(cwd, 'db'), include: ['**/*.sql'], exclude: [] }],
      environments: {},
      remotes: {},
      performance: {
        maxConcurrentClones: 8,
        cloneTimeoutMs: 60000,
        buildTimeoutMs: 0,
        statementBatchBytes: 1048576,
        cloneStrategy: 'auto',
        poolSize: 2,
        layerCheckpoints: true,
        keepTemplates: 0,
      },
      validation: { requiredTables: [], requiredFunctions: [], testQueries: [] },
      tools: {},
      backups: { directory: path.join(cwd, '.dbfast', 'backups'), format: 'custom' },
      deploy: { lockTimeoutMs: 5_000, lockRetries: 3 },
      warnings: [],
    });
  });

  it('falls back to dbfast_template when the folder name has nothing usable', async () => {
    const cwd = path.join(root, '---');
    await mkdir(cwd);
    expect((await loadConfig({ cwd, env: {} })).templateName).toBe('dbfast_template');
  });

  it('keeps a default template name valid when the folder starts with a digit or is long', async () => {
    const cwd = path.join(root, `2024-${'x'.repeat(80)}`);
    await mkdir(cwd);
    const { templateName } = await loadConfig({ cwd, env: {} });
    expect(templateName).toBe(`_2024_${'x'.repeat(37)}_template`);
    expect(templateName).toHaveLength(52);
  });
});

describe('parsing every section', () => {
  it('reads database, repository, environments, remotes, performance, validation and backups', async () => {
    const config = await load(`
[database]
host = "db.internal"
port = 6543
user = "builder"
database = "postgres"
password_env = "BUILD_PGPASSWORD"
template_name = "shop_template"
default_environment = "local"

[repository]
path = "./sql"
type = "directory"
include_patterns = ["**/*.sql", "**/*.psql"]
exclude_patterns = ["**/scratch/**"]

[environments.local]
include_directories = ["0_schema", "1_seed"]
description = "everything"

[environments.production]
include_directories = ["0_schema"]
exclude_files = ["0_schema/dev_only.sql"]
template_name = "shop_prod_template"

[remotes.staging]
url = "postgres://deploy@staging/shop?sslmode=verify-full"
environment = "production"
require_confirmation = true

[performance]
max_concurrent_clones = 4
clone_timeout_ms = 5000
build_timeout_ms = 0
statement_batch_bytes = 65536
clone_strategy = "wal_log"
pool_size = 0
layer_checkpoints = false
keep_templates = 2
clone_ttl = "12h"
max_disk = "1.5GB"

[validation]
required_tables = ["users"]
required_functions = ["now_utc"]
test_queries = ["SELECT 1", { query = "SELECT * FROM users", min_expected_results = 3 }]

[backups]
retention_days = 7
max_backups = 10
format = "directory"
`);
    expect(config.database).toEqual({
      origin: 'database',
      host: 'db.internal',
      port: 6543,
      user: 'builder',
      database: 'postgres',
      passwordEnv: 'BUILD_PGPASSWORD',
    });
    expect(config.templateName).toBe('shop_template');
    expect(config.defaultEnvironment).toBe('local');
    expect(config.repositories).toEqual([
      {
        path: path.join(root, 'sql'),
        include: ['**/*.sql', '**/*.psql'],
        exclude: ['**/scratch/**'],
      },
    ]);
    expect(config.environments).toEqual({
      local: { includeDirectories: ['0_schema', '1_seed'], description: 'everything' },
      production: {
        includeDirectories: ['0_schema'],
        excludeFiles: ['0_schema/dev_only.sql'],
        templateName: 'shop_prod_template',
      },
    });
    expect(config.remotes).toEqual({
      staging: {
        name: 'staging',
        origin: 'remotes.staging',
        url: 'postgres://deploy@staging/shop?sslmode=verify-full',
        environment: 'production',
        requireConfirmation: true,
        allowDestructive: false,
        backupBeforeDeploy: true,
      },
    });
    expect(config.performance).toEqual({
      maxConcurrentClones: 4,
      cloneTimeoutMs: 5000,
      buildTimeoutMs: 0,
      statementBatchBytes: 65536,
      cloneStrategy: 'wal_log',
      poolSize: 0,
      layerCheckpoints: false,
      keepTemplates: 2,
      cloneTtlMs: 43_200_000,
      maxDiskBytes: 1.5 * 1024 ** 3,
    });
    expect(config.validation).toEqual({
      requiredTables: ['users'],
      requiredFunctions: ['now_utc'],
      testQueries: [
        { query: 'SELECT 1', minExpectedResults: 1 },
        { query: 'SELECT * FROM users', minExpectedResults: 3 },
      ],
    });
    expect(config.backups).toEqual({
      directory: path.join(root, '.dbfast', 'backups'),
      maxAgeMs: 7 * 86_400_000,
      keepLast: 10,
      format: 'directory',
    });
    expect(config.warnings).toEqual([]);
  });

  it('accepts the [[remotes]] array form', async () => {
    const config = await load(`
[[remotes]]
name = "staging"
host = "staging.example.com"
port = 5433

[[remotes]]
name = "production"
url = "postgres://prod/app"
allow_destructive = true
backup_before_deploy = false
`);
    expect(config.remotes).toEqual({
      staging: {
        name: 'staging',
        origin: 'remotes.staging',
        host: 'staging.example.com',
        port: 5433,
        requireConfirmation: false,
        allowDestructive: false,
        backupBeforeDeploy: true,
      },
      production: {
        name: 'production',
        origin: 'remotes.production',
        url: 'postgres://prod/app',
        requireConfirmation: false,
        allowDestructive: true,
        backupBeforeDeploy: false,
      },
    });
    expect(config.warnings).toEqual([]);
  });

  it('refuses two [[remotes]] with the same name', async () => {
    const error = await loadError('[[remotes]]\nname = "prod"\n[[remotes]]\nname = "prod"\n');
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toBe('remotes[1].name "prod" is already used by remotes[0]');
  });

  it('keys the duplicate-name problem to the name of the second [[remotes]]', () => {
    const { errors } = parseConfigText('[[remotes]]\nname = "prod"\n[[remotes]]\nname = "prod"\n', {
      file: 'dbfast.toml',
      projectDir: root,
      env: {},
    });
    expect(errors).toEqual([
      { file: 'dbfast.toml', key: 'remotes[1].name', message: 'remotes[1].name "prod" is already used by remotes[0]' },
    ]);
  });

  it('refuses a remote whose environment is not configured', async () => {
    const error = await loadError(
      '[environments.local]\ninclude_directories = []\n[remotes.prod]\nhost = "h"\nenvironment = "staging"\n',
    );
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toBe('remotes.prod.environment names "staging", which is not a configured environment');
    expect(error.hint).toBe('configured environments: local');
  });
});

describe('invalid files', () => {
  it('names the file, the key path and the expectation in one line', async () => {
    const error = await loadError('[environments.local]\ninclude_directories = "x"\n');
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toBe('environments.local.include_directories must be a list of strings');
    expect(error.file).toBe('dbfast.toml');
  });

  it('shows the file relative to cwd when the file is inside it', async () => {
    await project('[performance]\nmax_concurrent_clones = 0\n', path.join(root, 'conf'));
    const error = await loadConfig({ cwd: root, configPath: 'conf/dbfast.toml', env: {} }).catch((e) => e);
    expect(error).toMatchObject({
      code: 'CONFIG_INVALID',
      file: path.join('conf', 'dbfast.toml'),
      message: 'performance.max_concurrent_clones must be a positive integer',
    });
  });

  it('reports several problems at once: counted in the message, one per line in detail', async () => {
    const error = await loadError('[database]\nport = "5432"\n[backups]\nformat = "zip"\n');
    expect(error).toMatchObject({ code: 'CONFIG_INVALID', file: 'dbfast.toml', message: '2 configuration problems' });
    expect(error.detail).toBe(
      'database.port must be a port number (1-65535)\nbackups.format must be "custom" or "directory" (pg_restore reads both)',
    );
  });

  it('reports a wrong type, a password and an unknown environment in one run, each with its hint', async () => {
    const error = await loadError(
      '[database]\nport = 99999\npassword = "hunter2-secret"\ndefault_environment = "staging"\n' +
        '[environments.local]\ninclude_directories = ["0_schema"]\n',
    );
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toBe('3 configuration problems');
    expect(error.file).toBe('dbfast.toml');
    expect(error.hint).toBeUndefined();
    expect(error.detail?.split('\n')).toEqual([
      'database.password is not allowed: passwords do not belong in dbfast.toml',
      '  hint: use password_env = "NAME_OF_AN_ENV_VAR", password_file = "path/to/file" or ~/.pgpass',
      'database.port must be a port number (1-65535)',
      'database.default_environment names "staging", which is not a configured environment',
      '  hint: configured environments: local',
    ]);
    expect(everything(error)).not.toContain('hunter2');
  });

  it('names the file given with -c in problems found by the rules', async () => {
    await mkdir(path.join(root, 'conf'));
    await writeFile(path.join(root, 'conf', 'other.toml'), '[database]\ndefault_environment = "local"\n');
    const error = await loadConfig({ cwd: root, configPath: 'conf/other.toml', env: {} }).catch((e) => e);
    expect(error).toMatchObject({
      code: 'CONFIG_INVALID',
      file: path.join('conf', 'other.toml'),
      message: 'database.default_environment names "local", which is not a configured environment',
      hint: 'no environments are configured: add an [environments.NAME] table',
    });
  });

  it('refuses an array where a table belongs', async () => {
    const error = await loadError('[[database]]\nhost = "x"\n');
    expect(error.message).toBe('database must be a table');
  });

  it('refuses a malformed test query', async () => {
    const error = await loadError('[validation]\ntest_queries = [{ query = 1 }]\n');
    expect(error.message).toBe(
      'validation.test_queries[0] must be a query string or a table { query = "...", min_expected_results = N }',
    );
  });

  it('carries line and column of a TOML syntax error', async () => {
    const error = await loadError('[database]\nhost = "localhost"\nport = = 5\n');
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.file).toBe('dbfast.toml');
    expect(error.line).toBe(3);
    expect(error.column).toBeGreaterThan(0);
    expect(error.message).toBe('invalid TOML: invalid value');
  });

  it.each([
    ['[database]\nhost = 5\n', 'database.host must be a string'],
    ['[remotes.x]\nhost = "h"\nallow_destructive = "yes"\n', 'remotes.x.allow_destructive must be true or false'],
    ['[performance]\nbuild_timeout_ms = -1\n', 'performance.build_timeout_ms must be a non-negative integer'],
    ['[performance]\nclone_strategy = "copy"\n', 'performance.clone_strategy must be "auto", "file_copy" or "wal_log"'],
    ['[performance]\npool_size = -1\n', 'performance.pool_size must be a non-negative integer'],
    ['[performance]\nlayer_checkpoints = "yes"\n', 'performance.layer_checkpoints must be true or false'],
    ['[performance]\nkeep_templates = -1\n', 'performance.keep_templates must be a non-negative integer'],
    ['[performance]\nclone_ttl = "7 days"\n', 'performance.clone_ttl must be a duration: 500ms, 5s, 30m, 12h, 7d, 2w'],
    ['[performance]\nmax_disk = "20G"\n', 'performance.max_disk must be a size: 500MB, 20GB, 1TB'],
    ['[validation]\ntest_queries = "select 1"\n', 'validation.test_queries must be a list'],
    ['[database]\nhost = "h"\npassword_env = "1PG"\n', 'database.password_env must be the name of an environment variable (letters, digits and _)'],
    ['[database]\nhost = "h"\npassword_env = "PG-PASS"\n', 'database.password_env must be the name of an environment variable (letters, digits and _)'],
  ])('names the expectation for %j', async (toml, message) => {
    const error = await loadError(toml);
    expect(error).toMatchObject({ code: 'CONFIG_INVALID', file: 'dbfast.toml', message });
  });

  it('reads keep_last and max_age, which win over the older max_backups and retention_days', async () => {
    const backups = (await load('[backups]\nkeep_last = 3\nmax_age = "2w"\nmax_backups = 9\nretention_days = 1\n')).backups;
    expect(backups).toMatchObject({ keepLast: 3, maxAgeMs: 14 * 86_400_000 });
    const error = await loadError('[backups]\nmax_age = "30 days"\n');
    expect(error.message).toBe('backups.max_age must be a duration: 500ms, 5s, 30m, 12h, 7d, 2w');
  });

  it('reads [deploy] lock_timeout (milliseconds too) and lock_retries, and refuses a timeout without a unit', async () => {
    expect((await load('[deploy]\nlock_timeout = "750ms"\nlock_retries = 0\n')).deploy).toEqual({ lockTimeoutMs: 750, lockRetries: 0 });
    expect((await load('[deploy]\nlock_timeout = "2s"\n')).deploy).toEqual({ lockTimeoutMs: 2_000, lockRetries: 3 });
    const error = await loadError('[deploy]\nlock_timeout = "5"\n');
    expect(error.message).toBe('deploy.lock_timeout must be a duration: 500ms, 5s, 30m, 12h, 7d, 2w');
  });

  it('accepts every backup format, both clone strategies and a zero build timeout', async () => {
    for (const format of ['custom', 'directory']) {
      expect((await load(`[backups]\nformat = "${format}"\n`)).backups.format).toBe(format);
    }
    for (const strategy of ['file_copy', 'wal_log']) {
      expect((await load(`[performance]\nclone_strategy = "${strategy}"\n`)).performance.cloneStrategy).toBe(strategy);
    }
    expect((await load('[performance]\nbuild_timeout_ms = 0\n')).performance.buildTimeoutMs).toBe(0);
  });

  it('refuses a __proto__ key as invalid TOML instead of letting it reach the settings', async () => {
    const error = await loadError('__proto__ = 1\n');
    expect(error).toMatchObject({ code: 'CONFIG_INVALID', file: 'dbfast.toml', line: 1 });
    expect(error.message).toBe('invalid TOML: document contains an unsafe property');
  });

  it('refuses a [[remotes]] entry without a usable name', async () => {
    for (const name of ['', 'name = ""\n', 'name = 5\n']) {
      const error = await loadError(`[[remotes]]\n${name}host = "h"\n`);
      expect(error).toMatchObject({ code: 'CONFIG_INVALID', file: 'dbfast.toml' });
      expect(error.message).toBe('remotes[0] must be a table with a non-empty name');
    }
  });

  it('still checks the other keys when one item of a list is wrong', async () => {
    const error = await loadError(
      '[database]\ndefault_environment = "staging"\n' +
        '[environments.local]\ninclude_directories = ["a", 5]\n[environments.test]\ninclude_directories = ["b"]\n',
    );
    expect(error.message).toBe('2 configuration problems');
    expect(error.detail?.split('\n')).toEqual([
      'environments.local.include_directories must be a list of strings',
      'database.default_environment names "staging", which is not a configured environment',
      '  hint: configured environments: local, test',
    ]);
  });

  it('still checks the rules when a list item is wrong, leaving out only that list', async () => {
    const error = await loadError(
      '[validation]\ntest_queries = [{ query = 1 }]\n' +
        '[environments.local]\ninclude_directories = []\n[remotes.prod]\nhost = "h"\nenvironment = "staging"\n',
    );
    expect(error.detail).toBe(
      'validation.test_queries[0] must be a query string or a table { query = "...", min_expected_results = N }\n' +
        'remotes.prod.environment names "staging", which is not a configured environment\n  hint: configured environments: local',
    );
  });

  it('leaves out only the refused key, not the same key in a sibling table, before checking the rules', async () => {
    const error = await loadError('[environments.local]\ntemplate_name = 5\n[environments.test]\ntemplate_name = "App"\n');
    expect(error.detail).toBe(
      'environments.local.template_name must be a string\n' +
        'environments.test.template_name must be a lowercase identifier (a-z, 0-9 and _, not starting with a digit)',
    );
  });

  it('reports an invalid template_name once, not again for every environment derived from it', async () => {
    const error = await loadError('[database]\ntemplate_name = "App"\n[environments.local]\n[environments.test]\n');
    expect(error).toMatchObject({
      code: 'CONFIG_INVALID',
      message: 'database.template_name must be a lowercase identifier (a-z, 0-9 and _, not starting with a digit)',
    });
  });

  it('refuses a literal password without echoing it', async () => {
    const error = await loadError('[database]\nhost = "h"\npassword = "hunter2-secret"\n');
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain('database.password');
    expect(error.hint).toContain('password_env');
    expect(error.hint).toContain('~/.pgpass');
    expect(JSON.stringify({ ...error, message: error.message })).not.toContain('hunter2');
  });

  it('accepts an environment that happens to be called password', async () => {
    const config = await load('[environments.password]\ninclude_directories = ["0_schema"]\n');
    expect(config.environments.password).toEqual({ includeDirectories: ['0_schema'] });
  });

  it('refuses a password key in any case, in any section, without echoing it', async () => {
    const error = await loadError(
      '[database]\nPassword = "hunter2-a"\n[environments.local]\nPASSWORD = "hunter2-b"\n' +
        '[remotes.prod]\nhost = "h"\npassWord = "hunter2-c"\n',
    );
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.detail?.split('\n').filter((line) => !line.startsWith('  hint:'))).toEqual([
      'database.Password is not allowed: passwords do not belong in dbfast.toml',
      'environments.local.PASSWORD is not allowed: passwords do not belong in dbfast.toml',
      'remotes.prod.passWord is not allowed: passwords do not belong in dbfast.toml',
    ]);
    expect(everything(error)).not.toContain('hunter2');
  });

  it('refuses a password inside a remote too', async () => {
    const error = await loadError('[[remotes]]\nname = "prod"\npassword = "hunter2-secret"\n');
    expect(error.message).toContain('remotes[0].password');
    expect(error.message).not.toContain('hunter2');
  });

  it('does not echo the line of a syntax error, which may hold a password', async () => {
    const error = await loadError('[database]\npassword = "hunter2-secret\n');
    expect(error.code).toBe('CONFIG_INVALID');
    expect(JSON.stringify({ ...error, message: error.message })).not.toContain('hunter2');
  });

  it('refuses template names that are not lowercase identifiers', async () => {
    for (const [toml, key] of [
      ['[database]\ntemplate_name = "My-Template"', 'database.template_name'],
      ['[database]\ntemplate_name = "1st"', 'database.template_name'],
      ['[environments.ci]\ntemplate_name = "ci template"', 'environments.ci.template_name'],
    ]) {
      const error = await loadError(toml as string);
      expect(error.code).toBe('CONFIG_INVALID');
      expect(error.message).toBe(`${key} must be a lowercase identifier (a-z, 0-9 and _, not starting with a digit)`);
    }
  });

  it('takes template names of 52 bytes and refuses 53: builds append up to 11 within 63', async () => {
    const longest = `_${'a'.repeat(51)}`;
    const config = await load(`[database]\ntemplate_name = "${longest}"\n[environments.ci]\ntemplate_name = "${longest}"\n`);
    expect(config.templateName).toBe(longest);
    expect(config.environments.ci?.templateName).toBe(longest);
    for (const key of ['database', 'environments.ci']) {
      const error = await loadError(`[${key}]\ntemplate_name = "${longest}a"\n`);
      expect(error.message).toBe(
        `${key}.template_name is longer than 52 bytes: dbfast appends up to 11 to it, within PostgreSQL's 63`,
      );
    }
  });

  it('refuses an environment whose derived template name cannot be one, and says how to fix it', async () => {
    const error = await loadError(
      '[database]\ntemplate_name = "app_template"\n[environments.Staging-EU]\n[environments.eu]\ntemplate_name = "app_eu"\n',
    );
    expect(error).toMatchObject({
      code: 'CONFIG_INVALID',
      message:
        'environments.Staging-EU: template name "app_template_Staging-EU" must be a lowercase identifier (a-z, 0-9 and _, not starting with a digit)',
      hint: "without a template_name of its own, an environment's template is named <template>_<environment>: set template_name in [environments.Staging-EU]",
    });
    const named = await load('[environments.Staging-EU]\ntemplate_name = "app_staging_eu"\n');
    expect(named.environments['Staging-EU']?.templateName).toBe('app_staging_eu');
  });

  it('refuses an environment name too long for any template name derived from it', async () => {
    const name = 'e'.repeat(52);
    const error = await loadError(`[environments.${name}]\n`);
    expect(error.message).toBe(
      `environments.${name}: template name "_${name}" is longer than 52 bytes: dbfast appends up to 11 to it, within PostgreSQL's 63`,
    );
    expect((await load(`[environments.${name.slice(1)}]\n`)).environments).toHaveProperty(name.slice(1));
  });

  it('refuses include_patterns = [], which selects no file', async () => {
    const error = await loadError('[repository]\ninclude_patterns = []\n');
    expect(error).toMatchObject({
      code: 'CONFIG_INVALID',
      file: 'dbfast.toml',
      message: 'repository.include_patterns is empty: no file can be selected',
      hint: 'list the files to build, e.g. ["**/*.sql"], or remove the key for that default',
    });
  });
});

describe('[[repositories]]', () => {
  const errorsOf = (toml: string) => parseConfigText(toml, { file: 'dbfast.toml', projectDir: root, env: {} }).errors;

  it('lists the repositories in order, named, their paths resolved and their patterns defaulted', async () => {
    const config = await load(`
[[repositories]]
name = "shared"
path = "../schema/db"
exclude_patterns = ["**/scratch/**"]

[[repositories]]
name = "app-db"
path = "db"
include_patterns = ["**/*.psql"]
`);
    expect(config.repositories).toEqual([
      { name: 'shared', path: path.join(path.dirname(root), 'schema', 'db'), include: ['**/*.sql'], exclude: ['**/scratch/**'] },
      { name: 'app-db', path: path.join(root, 'db'), include: ['**/*.psql'], exclude: [] },
    ]);
    expect(config.warnings).toEqual([]);
  });

  it('refuses [repository] beside [[repositories]]', async () => {
    const error = await loadError('[repository]\npath = "db"\n[[repositories]]\nname = "app"\npath = "app"\n');
    expect(error).toMatchObject({
      code: 'CONFIG_INVALID',
      file: 'dbfast.toml',
      message: '[repository] and [[repositories]] cannot both be set',
      hint: 'move [repository] into a [[repositories]] table with a name',
    });
  });

  it('refuses two repositories of one name, keyed to the second', () => {
    expect(errorsOf('[[repositories]]\nname = "app"\npath = "a"\n[[repositories]]\nname = "app"\npath = "b"\n')).toEqual([
      { file: 'dbfast.toml', key: 'repositories[1].name', message: 'repositories[1].name "app" is already used by repositories[0]' },
    ]);
  });

  it('requires a name and a path in each, reporting every missing one', () => {
    expect(errorsOf('[[repositories]]\nname = "shared"\n[[repositories]]\npath = "app"\n')).toEqual([
      { file: 'dbfast.toml', key: 'repositories[0].path', message: "repositories[0].path is missing: the repository's folder, relative to dbfast.toml" },
      {
        file: 'dbfast.toml',
        key: 'repositories[1].name',
        message: "repositories[1].name is missing: it starts the paths of the repository's files",
        hint: 'each [[repositories]] table has a name and a path',
      },
    ]);
  });

  it('takes simple names only: they start the paths environment rules match', () => {
    for (const name of ['a/b', '1_app', 'app*', '']) {
      expect(errorsOf(`[[repositories]]\nname = ${JSON.stringify(name)}\npath = "app"\n`)).toEqual([
        { file: 'dbfast.toml', key: 'repositories[0].name', message: 'repositories[0].name must be a simple name: a letter, then letters, digits, _ or -' },
      ]);
    }
  });

  it('refuses an empty list, a table instead of a list, and an entry that selects no file', () => {
    expect(errorsOf('repositories = []\n').map((issue) => issue.message)).toEqual(['repositories is empty: no file can be selected']);
    expect(errorsOf('[repositories]\nname = "app"\n').map((issue) => issue.message)).toEqual([
      'repositories must be a list of [[repositories]] tables',
    ]);
    const empty = errorsOf('[[repositories]]\nname = "a"\npath = "a"\n[[repositories]]\nname = "b"\npath = "b"\ninclude_patterns = []\n');
    expect(empty.map((issue) => issue.message)).toEqual(['repositories[1].include_patterns is empty: no file can be selected']);
  });

  it('warns about an unknown key in an entry', async () => {
    const config = await load('[[repositories]]\nname = "app"\npath = "app"\nexclude_pattern = []\n');
    expect(config.warnings).toEqual([
      { file: 'dbfast.toml', key: 'repositories[0].exclude_pattern', message: 'unknown key repositories[0].exclude_pattern', hint: 'did you mean "exclude_patterns"?' },
    ]);
  });
});

describe('unknown keys', () => {
  it('become warnings with a did-you-mean hint when a known key is close', async () => {
    const config = await load(`
[database]
hots = "localhost"
[environments.local]
include_dirs = ["0_schema"]
exlude_files = []
[remotes.prod]
url = "postgres://prod/app"
requires_confirmation = true
[colour]
x = 1
`);
    expect(config.warnings).toEqual([
      { file: 'dbfast.toml', key: 'database.hots', message: 'unknown key database.hots', hint: 'did you mean "host"?' },
      { file: 'dbfast.toml', key: 'environments.local.include_dirs', message: 'unknown key environments.local.include_dirs' },
      {
        file: 'dbfast.toml',
        key: 'environments.local.exlude_files',
        message: 'unknown key environments.local.exlude_files',
        hint: 'did you mean "exclude_files"?',
      },
      {
        file: 'dbfast.toml',
        key: 'remotes.prod.requires_confirmation',
        message: 'unknown key remotes.prod.requires_confirmation',
        hint: 'did you mean "require_confirmation"?',
      },
      { file: 'dbfast.toml', key: 'colour', message: 'unknown key colour' },
    ]);
  });

  it('looks inside inline tables of test queries', async () => {
    const config = await load('[validation]\ntest_queries = [{ query = "SELECT 1", min_expected = 2 }]\n');
    expect(config.warnings.map((warning) => warning.key)).toEqual(['validation.test_queries[0].min_expected']);
  });

  it('ignores the content of [repository].type', async () => {
    const config = await load('[repository]\ntype = { kind = "directory" }\n');
    expect(config.warnings).toEqual([]);
  });
});

describe('environment variables', () => {
  it('DBFAST_DATABASE_URL replaces the database settings of the file', async () => {
    const config = await load('[database]\nhost = "file-host"\nport = 5433\n', {
      DBFAST_DATABASE_URL: 'postgres://env-host/db',
    });
    expect(config.database).toEqual({ origin: 'DBFAST_DATABASE_URL', url: 'postgres://env-host/db' });
  });

  it('DBFAST_STATE_DIR sets the state folder, resolved against cwd', async () => {
    const config = await load('', { DBFAST_STATE_DIR: 'state' });
    expect(config.stateDir).toBe(path.join(root, 'state'));
    expect(config.stateDirFromEnv).toBe(true);
    expect(config.backups.directory).toBe(path.join(root, 'state', 'backups'));
  });

  it('PGHOST or PGHOSTADDR alone selects a configured server with libpq defaults', async () => {
    expect((await load('', { PGHOST: '/var/run/postgresql' })).database).toEqual({ origin: 'PGHOST' });
    expect((await load('', { PGHOSTADDR: '127.0.0.1' })).database).toEqual({ origin: 'PGHOST' });
  });

  it('no connection key anywhere means the embedded server', async () => {
    const config = await load('[database]\ntemplate_name = "app_template"\n', { PGUSER: 'someone' });
    expect(config.database).toBeNull();
  });
});

describe('connection URLs', () => {
  it('names where an invalid URL came from: the variable, the file key or the remote', async () => {
    const fromEnv = await loadError('', { DBFAST_DATABASE_URL: 'localhost:5432' });
    expect(fromEnv).toMatchObject({ code: 'CONFIG_INVALID', message: 'DBFAST_DATABASE_URL is not a valid postgresql:// URL' });
    expect(fromEnv.file).toBeUndefined();
    const fromFile = await loadError('[database]\nurl = "mysql://app@h/db"\n');
    expect(fromFile).toMatchObject({ message: 'database.url must start with postgresql://, not mysql://', file: 'dbfast.toml' });
    const fromRemote = await loadError('[remotes.staging]\nurl = "postgres://h:99999/db"\n');
    expect(fromRemote).toMatchObject({ message: 'remotes.staging.url is not a valid postgresql:// URL', file: 'dbfast.toml' });
  });

  it('lists a file problem and a variable problem together, naming the file only where it applies', async () => {
    const error = await loadError('[database]\nurl = "mysql://app@h/db"\n', { DBFAST_DATABASE_URL: 'nonsense' });
    expect(error.file).toBeUndefined();
    expect(error.detail).toBe(
      'dbfast.toml: database.url must start with postgresql://, not mysql://\nDBFAST_DATABASE_URL is not a valid postgresql:// URL',
    );
  });

  it('refuses an unknown sslmode, naming the key and the modes libpq knows', async () => {
    const error = await loadError('[database]\nurl = "postgresql://app@h/db?sslmode=bogus"\n');
    expect(error).toMatchObject({
      message: 'database.url has an unknown sslmode',
      hint: 'sslmode is one of disable, allow, prefer, require, verify-ca, verify-full',
    });
    for (const mode of ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']) {
      const config = await load('', { DBFAST_DATABASE_URL: `postgres://h/db?sslmode=${mode}` });
      expect(config.database?.url).toContain(mode);
    }
  });

  it.each([
    'mysql://u:secret@h/db',
    'postgresql://u:sec ret@h:notaport/db',
    'postgresql://u:secret@h:99999/db',
    'postgresql://u:se%ZZcret@h/db',
    'u:secret@h/db',
    'postgresql://u@h/db?password=secret&sslmode=secret',
  ])('never repeats a password from an invalid URL: %s', async (url) => {
    for (const [toml, env] of [
      ['', { DBFAST_DATABASE_URL: url }],
      [`[database]\nurl = "${url}"\n`, {}],
      [`[remotes.staging]\nurl = "${url}"\n`, {}],
    ] as const) {
      const error = await loadError(toml, env);
      expect(error.code).toBe('CONFIG_INVALID');
      expect(everything(error)).not.toContain('secret');
    }
  });
});

describe('paths in the settings', () => {
  it('expands ~ and ~/ in password_file to the home directory, and resolves anything else against the project', async () => {
    const passwordFile = async (file: string) => (await load(`[database]\nhost = "h"\npassword_file = "${file}"\n`)).database?.passwordFile;
    expect(await passwordFile('~/.pgpass')).toBe(path.join(os.homedir(), '.pgpass'));
    expect(await passwordFile('~')).toBe(os.homedir());
    expect(await passwordFile('~pw')).toBe(path.join(root, '~pw'));
    expect(await passwordFile('secrets/~/pw')).toBe(path.join(root, 'secrets', '~', 'pw'));
  });

  it('resolves tools.pg_bin_dir against the project, and leaves it out when unset', async () => {
    expect((await load('[tools]\npg_bin_dir = "pg/bin"\n')).tools).toEqual({ pgBinDir: path.join(root, 'pg', 'bin') });
    expect((await load('')).tools).toEqual({});
  });

  it('shows a path relative to cwd only when it lies strictly inside cwd', () => {
    const cwd = path.join(root, 'project');
    expect(displayPath(path.join(cwd, 'conf', 'dbfast.toml'), cwd)).toBe(path.join('conf', 'dbfast.toml'));
    expect(displayPath(path.join(cwd, '..foo', 'dbfast.toml'), cwd)).toBe(path.join('..foo', 'dbfast.toml'));
    expect(displayPath(cwd, cwd)).toBe(cwd);
    expect(displayPath(path.join(root, 'other', 'dbfast.toml'), cwd)).toBe(path.join(root, 'other', 'dbfast.toml'));
  });
});

describe('passwords in connection URLs', () => {
  const warning = (key: string) => ({
    file: 'dbfast.toml',
    key,
    message: `${key} contains a password`,
    hint: 'move it to password_env or password_file, so dbfast.toml can be committed',
  });

  it('warns about a password written in a url, by key, without refusing it', async () => {
    expect((await load('[database]\nurl = "postgresql://app:pw@h/db"\n')).warnings).toEqual([warning('database.url')]);
    expect((await load('[database]\nurl = "postgresql://h/db?sslmode=require&password=pw"\n')).warnings).toEqual([
      warning('database.url'),
    ]);
    expect((await load('[database]\nurl = "postgresql://h/db?password=pw"\n')).warnings).toEqual([warning('database.url')]);
    const remote = await load('[remotes.staging]\nurl = "postgres://app:pw@h/db"\n');
    expect(remote.warnings).toEqual([warning('remotes.staging.url')]);
  });

  it('does not mistake a user name, a port or a query for a password', async () => {
    for (const url of ['postgresql://app@h/db', 'postgresql://h:5433/db', 'postgresql://app@h:5433/db?sslmode=require']) {
      expect((await load(`[database]\nurl = "${url}"\n`)).warnings).toEqual([]);
    }
  });
});

describe('parseConnectionUrl', () => {
  function urlError(text: string): DbfastError {
    try {
      parseConnectionUrl(text, 'database.url');
    } catch (error) {
      expect(error).toBeInstanceOf(DbfastError);
      return error as DbfastError;
    }
    throw new Error(`${text} was accepted`);
  }

  it('splits a URL into its parts, %-decoded', () => {
    const url = parseConnectionUrl('postgresql://app%40x:p%2Fw@db.example.com:5433/my%20db?sslmode=require', 'origin');
    expect({ ...url, params: url.params.toString() }).toEqual({
      host: 'db.example.com',
      port: 5433,
      user: 'app@x',
      password: 'p/w',
      database: 'my db',
      params: 'sslmode=require',
    });
  });

  it('leaves out the parts the URL does not have, including an empty database after the slash', () => {
    for (const text of ['postgresql://', 'postgresql:///', 'postgres://']) {
      const url = parseConnectionUrl(text, 'origin');
      expect({ ...url, params: url.params.toString() }).toEqual({
        host: undefined,
        port: undefined,
        user: undefined,
        password: undefined,
        database: undefined,
        params: '',
      });
    }
    expect(parseConnectionUrl('postgresql://h/', 'origin').database).toBeUndefined();
    expect(parseConnectionUrl('postgresql://h', 'origin').database).toBeUndefined();
    expect(parseConnectionUrl('postgresql://h/d', 'origin').database).toBe('d');
  });

  it('unwraps an IPv6 host from its brackets', () => {
    expect(parseConnectionUrl('postgresql://[::1]:5432/db', 'origin').host).toBe('::1');
  });

  it('uses ?host= and ?password= (over the URL host) and keeps them out of the params it prints', () => {
    const url = parseConnectionUrl('postgresql://u@ignored/db?host=/var/run/postgresql&password=pw&sslmode=disable', 'o');
    expect(url.host).toBe('/var/run/postgresql');
    expect(url.password).toBe('pw');
    expect(url.params.toString()).toBe('sslmode=disable');
    expect(parseConnectionUrl('postgresql:///db?host=/tmp', 'o').host).toBe('/tmp');
    expect(parseConnectionUrl('postgresql://u:inurl@h/db?password=inquery', 'o').password).toBe('inurl');
  });

  it('names a malformed %-escape without quoting the URL', () => {
    const error = urlError('postgresql://u:se%ZZcret@h/db');
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toBe('database.url is not a valid postgresql:// URL: it has a malformed %-escape');
  });

  it('shows a scheme only when the URL starts with it, never a word from later in the URL', () => {
    // Without a leading scheme, `u:hunter2@h/...` parses as a URL whose "scheme" is the user name.
    const error = urlError('u:hunter2@h/hunter2://x');
    expect(error.message).toBe('database.url is not a valid postgresql:// URL');
    expect(everything(error)).not.toContain('hunter2');
  });
});

describe('remotes', () => {
  it('are parsed and checked, without warnings', async () => {
    const config = await load('[remotes.staging]\nhost = "staging.example.com"\n');
    expect(config.remotes.staging?.host).toBe('staging.example.com');
    expect(config.warnings).toEqual([]);
  });
});
