import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type DbfastConfig, findConfigFile, loadConfig } from '../../src/core/config.js';
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

async function loadError(toml: string): Promise<DbfastError> {
  const error = await load(toml).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(DbfastError);
  return error as DbfastError;
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

  it('fails with CONFIG_NOT_FOUND when --config names a missing file', async () => {
    await expect(loadConfig({ cwd: root, configPath: 'missing.toml', env: {} })).rejects.toMatchObject({
      code: 'CONFIG_NOT_FOUND',
      file: 'missing.toml',
    });
  });

  it('uses --config relative to cwd and takes the project folder from it', async () => {
    const dir = await project('[repository]\npath = "sql"\n', path.join(root, 'elsewhere'));
    const config = await loadConfig({ cwd: root, configPath: 'elsewhere/dbfast.toml', env: {} });
    expect(config.configPath).toBe(path.join(dir, 'dbfast.toml'));
    expect(config.projectDir).toBe(dir);
    expect(config.repository.path).toBe(path.join(dir, 'sql'));
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
    expect(config.repository.path).toBe(path.join(path.dirname(root), 'shared', 'db'));
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
      repository: { path: path.join(cwd, 'db'), include: ['**/*.sql'], exclude: [] },
      environments: {},
      remotes: {},
      performance: {
        maxConcurrentClones: 8,
        cloneTimeoutMs: 60000,
        buildTimeoutMs: 0,
        statementBatchBytes: 1048576,
        cloneStrategy: 'file_copy',
      },
      validation: { requiredTables: [], requiredFunctions: [], testQueries: [] },
      backups: { directory: path.join(cwd, '.dbfast', 'backups'), format: 'custom' },
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
    expect(templateName).toMatch(/^[a-z_][a-z0-9_]*_template$/);
    expect(templateName.length).toBeLessThanOrEqual(50);
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
url = "postgres://deploy@staging/shop"
environment = "production"
require_confirmation = true

[performance]
max_concurrent_clones = 4
clone_timeout_ms = 5000
build_timeout_ms = 0
statement_batch_bytes = 65536
clone_strategy = "wal_log"

[validation]
required_tables = ["users"]
required_functions = ["now_utc"]
test_queries = ["SELECT 1", { query = "SELECT * FROM users", min_expected_results = 3 }]

[backups]
retention_days = 7
max_backups = 10
format = "plain"
`);
    expect(config.database).toEqual({
      host: 'db.internal',
      port: 6543,
      user: 'builder',
      database: 'postgres',
      passwordEnv: 'BUILD_PGPASSWORD',
    });
    expect(config.templateName).toBe('shop_template');
    expect(config.defaultEnvironment).toBe('local');
    expect(config.repository).toEqual({
      path: path.join(root, 'sql'),
      include: ['**/*.sql', '**/*.psql'],
      exclude: ['**/scratch/**'],
    });
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
        url: 'postgres://deploy@staging/shop',
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
      retentionDays: 7,
      maxBackups: 10,
      format: 'plain',
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
        host: 'staging.example.com',
        port: 5433,
        requireConfirmation: false,
        allowDestructive: false,
        backupBeforeDeploy: true,
      },
      production: {
        name: 'production',
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

  it('reports several problems on one line', async () => {
    const error = await loadError('[database]\nport = "5432"\n[backups]\nformat = "zip"\n');
    expect(error.message).toBe(
      'database.port must be a port number (1-65535); backups.format must be "custom", "plain" or "directory"',
    );
    expect(error.message).not.toContain('\n');
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
    expect(error.message).toMatch(/^invalid TOML: /);
    expect(error.message).not.toContain('\n');
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

  it('refuses template names that are not lowercase identifiers of at most 50 bytes', async () => {
    for (const [toml, key] of [
      ['[database]\ntemplate_name = "My-Template"', 'database.template_name'],
      ['[database]\ntemplate_name = "1st"', 'database.template_name'],
      [`[database]\ntemplate_name = "${'a'.repeat(51)}"`, 'database.template_name'],
      ['[environments.ci]\ntemplate_name = "ci template"', 'environments.ci.template_name'],
    ]) {
      const error = await loadError(toml as string);
      expect(error.code).toBe('CONFIG_INVALID');
      expect(error.message).toMatch(new RegExp(`^${key} must be a lowercase identifier`));
    }
    const config = await load(`[database]\ntemplate_name = "_${'a'.repeat(49)}"`);
    expect(config.templateName).toHaveLength(50);
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
    expect(config.database).toEqual({ url: 'postgres://env-host/db' });
  });

  it('DBFAST_STATE_DIR sets the state folder, resolved against cwd', async () => {
    const config = await load('', { DBFAST_STATE_DIR: 'state' });
    expect(config.stateDir).toBe(path.join(root, 'state'));
    expect(config.stateDirFromEnv).toBe(true);
    expect(config.backups.directory).toBe(path.join(root, 'state', 'backups'));
  });

  it('PGHOST or PGHOSTADDR alone selects a configured server with libpq defaults', async () => {
    expect((await load('', { PGHOST: '/var/run/postgresql' })).database).toEqual({});
    expect((await load('', { PGHOSTADDR: '127.0.0.1' })).database).toEqual({});
  });

  it('no connection key anywhere means the embedded server', async () => {
    const config = await load('[database]\ntemplate_name = "app_template"\n', { PGUSER: 'someone' });
    expect(config.database).toBeNull();
  });
});
