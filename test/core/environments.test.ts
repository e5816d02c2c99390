import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type DbfastConfig, type EnvironmentSettings, loadConfig, type RemoteSettings } from '../../src/core/config/index.js';
import {
  devDataKind,
  directoriesOf,
  type EnvironmentIssue,
  isProductionLike,
  resolveEnvironment,
  selectFiles,
  validateEnvironment,
} from '../../src/core/environments.js';
import { DbfastError } from '../../src/core/errors.js';

/** The original Rust DBFast's example repository, in execution order. */
const REPOSITORY = [
  '0_schema/tables.sql',
  '0_schema/views.sql',
  '1_seed_common/prod_secrets.sql',
  '1_seed_common/users.sql',
  '2_seed_backend/orders.sql',
  '6_migration/001_add.sql',
  '6_migration/test_fixture.sql',
  '99_finalize/grants.sql',
];

const files = (paths: string[]) => paths.map((relativePath) => ({ relativePath }));
const paths = (selected: { relativePath: string }[]) => selected.map((file) => file.relativePath);
const select = (repository: string[], settings: EnvironmentSettings) => paths(selectFiles(files(repository), settings));

function makeConfig(
  environments: Record<string, EnvironmentSettings>,
  overrides: { defaultEnvironment?: string; templateName?: string; remotes?: Record<string, Partial<RemoteSettings>> } = {},
): DbfastConfig {
  const remotes = Object.fromEntries(
    Object.entries(overrides.remotes ?? {}).map(([name, remote]) => [
      name,
      { name, origin: `remotes.${name}`, requireConfirmation: false, allowDestructive: false, backupBeforeDeploy: true, ...remote },
    ]),
  );
  return {
    configPath: '/project/dbfast.toml',
    projectDir: '/project',
    stateDir: '/project/.dbfast',
    database: null,
    templateName: overrides.templateName ?? 'app_template',
    ...(overrides.defaultEnvironment === undefined ? {} : { defaultEnvironment: overrides.defaultEnvironment }),
    repositories: [{ path: '/project/db', include: ['**/*.sql'], exclude: [] }],
    environments,
    remotes,
    performance: {
      maxConcurrentClones: 8,
      cloneTimeoutMs: 60_000,
      buildTimeoutMs: 0,
      statementBatchBytes: 1_048_576,
      cloneStrategy: 'file_copy',
      poolSize: 2,
      layerCheckpoints: true,
      keepTemplates: 0,
    },
    validation: { requiredTables: [], requiredFunctions: [], testQueries: [] },
    tools: {},
    backups: { directory: '/project/.dbfast/backups', format: 'custom' },
    deploy: { lockTimeoutMs: 5_000, lockRetries: 3 },
    warnings: [],
  };
}

function thrown(run: () => unknown): DbfastError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(DbfastError);
    return error as DbfastError;
  }
  throw new Error('expected a DbfastError');
}

function validate(config: DbfastConfig, name: string, repository = REPOSITORY): EnvironmentIssue[] {
  return validateEnvironment(config, name, files(repository), directoriesOf(files(repository)));
}

const withCode = (issues: EnvironmentIssue[], code: string) => issues.filter((issue) => issue.code === code);

describe('selectFiles: the original DBFast examples, read from dbfast.toml', () => {
  async function loadExample(): Promise<DbfastConfig> {
    const dir = await mkdtemp(join(tmpdir(), 'dbfast-environments-'));
    try {
      await writeFile(
        join(dir, 'dbfast.toml'),
        [
          '[environments.local]',
          'include_directories = ["0_schema", "1_seed_common"]',
          'exclude_files = ["**/prod_*.sql"]',
          '',
          '[environments.production]',
          'include_directories = ["0_schema", "6_migration"]',
          'exclude_files = ["**/test_*.sql"]',
        ].join('\n'),
      );
      return await loadConfig({ cwd: dir, env: {} });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  it('local keeps schema and common seeds, but no migrations and no prod_*.sql', async () => {
    const config = await loadExample();
    expect(select(REPOSITORY, config.environments.local!)).toEqual([
      '0_schema/tables.sql',
      '0_schema/views.sql',
      '1_seed_common/users.sql',
    ]);
  });

  it('production keeps schema and migrations, but no seed directories and no test_*.sql', async () => {
    const config = await loadExample();
    expect(select(REPOSITORY, config.environments.production!)).toEqual([
      '0_schema/tables.sql',
      '0_schema/views.sql',
      '6_migration/001_add.sql',
    ]);
  });
});

describe('selectFiles: resolution order', () => {
  it('selects every file when an environment has no rules', () => {
    expect(select(REPOSITORY, {})).toEqual(REPOSITORY);
  });

  it('removes excluded directories from the included ones', () => {
    const repository = ['db/a.sql', 'db/seed/b.sql', 'db/seed/deep/c.sql', 'db/seeds/d.sql'];
    expect(select(repository, { includeDirectories: ['db'], excludeDirectories: ['db/seed'] })).toEqual([
      'db/a.sql',
      'db/seeds/d.sql',
    ]);
  });

  it('lets include_files bring back a file from an excluded directory', () => {
    const settings = { excludeDirectories: ['1_seed_common'], includeFiles: ['1_seed_common/users.sql'] };
    expect(select(REPOSITORY, settings)).toContain('1_seed_common/users.sql');
    expect(select(REPOSITORY, settings)).not.toContain('1_seed_common/prod_secrets.sql');
  });

  it('lets include_files add a file from outside include_directories', () => {
    expect(select(REPOSITORY, { includeDirectories: ['0_schema'], includeFiles: ['99_finalize/*.sql'] })).toEqual([
      '0_schema/tables.sql',
      '0_schema/views.sql',
      '99_finalize/grants.sql',
    ]);
  });

  it('applies exclude_files last: it beats include_files', () => {
    const settings = { includeDirectories: ['0_schema'], includeFiles: ['6_migration/*.sql'], excludeFiles: ['**/test_*.sql'] };
    expect(select(REPOSITORY, settings)).toEqual([
      '0_schema/tables.sql',
      '0_schema/views.sql',
      '6_migration/001_add.sql',
    ]);
  });

  it('keeps the input order, even where it is not alphabetical', () => {
    const repository = ['b/2.sql', 'a/1.sql', 'c/3.sql', 'a/0.sql'];
    expect(select(repository, { includeDirectories: ['c', 'a'], includeFiles: ['b/2.sql'] })).toEqual(repository);
  });

  it('returns the very objects it was given, for any file type', () => {
    const scanned = [{ relativePath: '0_schema/a.sql', hash: 'x' }];
    expect(selectFiles(scanned, { includeDirectories: ['0_schema'] })[0]).toBe(scanned[0]);
  });

  it('keeps no directory for include_directories = [], only include_files', () => {
    expect(select(REPOSITORY, { includeDirectories: [] })).toEqual([]);
    expect(select(REPOSITORY, { includeDirectories: [], includeFiles: ['**/users.sql'] })).toEqual([
      '1_seed_common/users.sql',
    ]);
  });

  it('leaves files at the repository root out when include_directories is given', () => {
    expect(select(['init.sql', '0_schema/a.sql'], { includeDirectories: ['0_schema'] })).toEqual(['0_schema/a.sql']);
  });
});

describe('selectFiles: directory matching', () => {
  const repository = [
    '0_schema/seed_like.sql',
    '1_seed_common/a.sql',
    '2_seed_backend/sub/b.sql',
    'db/seed/c.sql',
    'db/seed/deeper/d.sql',
    'db/seeds/e.sql',
    'seed/f.sql',
    '6_migration/fixtures/g.sql',
  ];

  it('matches a plain name against top-level directories only', () => {
    expect(select(repository, { includeDirectories: ['seed'] })).toEqual(['seed/f.sql']);
  });

  it('matches a name with a / as a directory path prefix, whole segments only', () => {
    expect(select(repository, { includeDirectories: ['db/seed'] })).toEqual(['db/seed/c.sql', 'db/seed/deeper/d.sql']);
  });

  it('ignores ./ in front and / behind a directory name', () => {
    expect(select(repository, { includeDirectories: ['./db/seed/'] })).toEqual(['db/seed/c.sql', 'db/seed/deeper/d.sql']);
    for (const entry of [' db/seed ', '/db/seed', './/db/seed', 'db/seed//']) {
      expect([entry, select(repository, { includeDirectories: [entry] })]).toEqual([entry, ['db/seed/c.sql', 'db/seed/deeper/d.sql']]);
    }
  });

  it('selects nothing for an entry that names the repository root itself', () => {
    for (const entry of ['./', '/']) {
      expect([entry, select(['top.sql', 'db/seed/c.sql'], { includeDirectories: [entry] })]).toEqual([entry, []]);
    }
  });

  it('matches a glob against every ancestor directory of a file', () => {
    expect(select(repository, { includeDirectories: ['*_seed*'] })).toEqual(['1_seed_common/a.sql', '2_seed_backend/sub/b.sql']);
    expect(select(repository, { includeDirectories: ['**/fixtures'] })).toEqual(['6_migration/fixtures/g.sql']);
    expect(select(repository, { includeDirectories: ['db/seed/**'] })).toEqual(['db/seed/c.sql', 'db/seed/deeper/d.sql']);
  });

  it('uses the same matching for exclude_directories', () => {
    expect(select(repository, { excludeDirectories: ['*_seed*', 'db', '6_migration/fix*'] })).toEqual([
      '0_schema/seed_like.sql',
      'seed/f.sql',
    ]);
  });
});

describe('directoriesOf', () => {
  it('lists every level once, parents before children', () => {
    expect(directoriesOf(files(['0_schema/a/b.sql', '0_schema/a/c.sql', '0_schema/d.sql', 'top.sql', 'x/y/z/w.sql']))).toEqual([
      '0_schema',
      '0_schema/a',
      'x',
      'x/y',
      'x/y/z',
    ]);
  });
});

describe('resolveEnvironment', () => {
  const both = () => makeConfig({ local: {}, production: {} });

  it('uses every file and the base template when no environments are configured', () => {
    expect(resolveEnvironment(makeConfig({}), undefined, {})).toEqual({
      name: null,
      settings: null,
      templateName: 'app_template',
    });
  });

  it('refuses --env when no environments are configured', () => {
    const error = thrown(() => resolveEnvironment(makeConfig({}), 'production', {}));
    expect(error.code).toBe('USAGE');
    expect(error.message).toBe('unknown environment "production"');
    expect(error.hint).toBe('no environments are configured: add an [environments.NAME] table to dbfast.toml');
  });

  it('prefers --env, then DBFAST_ENV, then default_environment', () => {
    const config = makeConfig({ local: {}, staging: {}, production: {} }, { defaultEnvironment: 'local' });
    expect(resolveEnvironment(config, 'production', { DBFAST_ENV: 'staging' }).name).toBe('production');
    expect(resolveEnvironment(config, undefined, { DBFAST_ENV: 'staging' }).name).toBe('staging');
    expect(resolveEnvironment(config, undefined, {}).name).toBe('local');
    expect(resolveEnvironment(config, undefined, { DBFAST_ENV: '' }).name).toBe('local');
  });

  it('uses the only environment when none is chosen', () => {
    const config = makeConfig({ local: { includeDirectories: ['0_schema'] } });
    expect(resolveEnvironment(config, undefined, {})).toEqual({
      name: 'local',
      settings: { includeDirectories: ['0_schema'] },
      templateName: 'app_template_local',
    });
  });

  it('names the available environments for an unknown one', () => {
    const error = thrown(() => resolveEnvironment(both(), 'prod', {}));
    expect(error.code).toBe('USAGE');
    expect(error.message).toBe('unknown environment "prod"');
    expect(error.hint).toBe('available: local, production');
    expect(error.detail).toBeUndefined();
  });

  it('says when the unknown name came from DBFAST_ENV', () => {
    const error = thrown(() => resolveEnvironment(both(), undefined, { DBFAST_ENV: 'stagin' }));
    expect(error.message).toBe('unknown environment "stagin"');
    expect(error.detail).toBe('chosen by the DBFAST_ENV environment variable');
  });

  it('does not take an inherited property for an environment', () => {
    expect(thrown(() => resolveEnvironment(both(), 'constructor', {})).code).toBe('USAGE');
  });

  it('asks for --env when several environments are configured and none is chosen', () => {
    const error = thrown(() => resolveEnvironment(both(), undefined, {}));
    expect(error.code).toBe('ENVIRONMENT_REQUIRED');
    expect(error.message).toBe('several environments are configured: choose one with --env');
    expect(error.hint).toBe('available: local, production');
  });

  it('rejects a default_environment that is not configured, saying where the name came from', () => {
    const error = thrown(() => resolveEnvironment(makeConfig({}, { defaultEnvironment: 'local' }), undefined, {}));
    expect(error.code).toBe('USAGE');
    expect(error.message).toBe('unknown environment "local"');
    expect(error.detail).toBe('chosen by default_environment in [database]');
  });

  it('uses the environment\'s own template_name when it sets one', () => {
    const config = makeConfig({ local: {}, production: { templateName: 'shop_prod' } });
    expect(resolveEnvironment(config, 'production', {}).templateName).toBe('shop_prod');
    expect(resolveEnvironment(config, 'local', {}).templateName).toBe('app_template_local');
  });

  it('derives a template name of at most 52 bytes, shortening the base template name to fit', () => {
    const base = 'a'.repeat(46);
    expect(resolveEnvironment(makeConfig({ local: {} }, { templateName: base }), undefined, {}).templateName).toBe(`${base}_local`);
    const longer = resolveEnvironment(makeConfig({ localx: {} }, { templateName: base }), undefined, {});
    expect(longer.templateName).toBe(`${'a'.repeat(45)}_localx`);
    const atUnderscore = resolveEnvironment(makeConfig({ production: {} }, { templateName: `${'a'.repeat(40)}_bcd` }), undefined, {});
    expect(atUnderscore.templateName).toBe(`${'a'.repeat(40)}_production`);
  });
});

describe('devDataKind: whole words only', () => {
  it.each([
    ['1_seed_common', 'seed data'],
    ['test_users.sql', 'test data'],
    ['dev', 'development data'],
    ['samples', 'sample data'],
    ['fixtures', 'test data'],
    ['fakeUsers.sql', 'sample data'],
    ['02-demo.sql', 'sample data'],
    ['debug', 'debug data'],
    ['seed01.sql', 'seed data'],
  ])('%s looks like %s', (name, kind) => {
    expect(devDataKind(name)).toBe(kind);
  });

  it('knows every word of each kind', () => {
    const kinds: Record<string, string[]> = {
      'seed data': ['seed', 'seeds', 'seeding'],
      'test data': ['test', 'tests', 'testing', 'fixture', 'fixtures', 'mock', 'mocks'],
      'debug data': ['debug'],
      'development data': ['dev', 'devel', 'development'],
      'sample data': ['sample', 'samples', 'demo', 'demos', 'fake', 'fakes', 'faker', 'dummy'],
    };
    for (const [kind, words] of Object.entries(kinds)) {
      for (const word of words) expect([word, devDataKind(`9_${word}.sql`)]).toEqual([word, kind]);
    }
  });

  it('splits an upper-case run from the capitalised word after it', () => {
    expect(devDataKind('MOCKData.sql')).toBe('test data');
    expect(devDataKind('loadTESTUsers.sql')).toBe('test data');
    expect(devDataKind('SEED')).toBe('seed data');
  });

  it.each(['device.sql', 'latest.sql', 'contest.sql', 'seedling.sql', '0_schema', 'developer_roles.sql'])(
    '%s looks like production data',
    (name) => {
      expect(devDataKind(name)).toBeNull();
    },
  );
});

describe('isProductionLike', () => {
  it('takes the whole name production or prod, in any case, and nothing that only contains it', () => {
    const config = makeConfig({});
    for (const name of ['production', 'prod', 'PROD', 'Production']) expect([name, isProductionLike(config, name)]).toEqual([name, true]);
    for (const name of ['preprod', 'production_copy', 'prod2', 'nonproduction']) {
      expect([name, isProductionLike(config, name)]).toEqual([name, false]);
    }
  });
});

describe('validateEnvironment', () => {
  const everything = makeConfig({ all: {} });

  it('finds nothing to say about a sound environment', () => {
    expect(validate(everything, 'all')).toEqual([]);
  });

  it('throws for an unknown environment', () => {
    const error = thrown(() => validate(everything, 'production'));
    expect(error.code).toBe('USAGE');
    expect(error.message).toBe('unknown environment "production"');
    expect(error.hint).toBe('available: all');
  });

  it('reports a directory that does not exist, with a close one as hint', () => {
    const config = makeConfig({ all: { includeDirectories: ['0_schma', '1_seed_common'], excludeDirectories: ['nothing_like_it'] } });
    expect(withCode(validate(config, 'all'), 'unknown-directory')).toEqual([
      {
        severity: 'error',
        code: 'unknown-directory',
        message: 'environments.all.include_directories: "0_schma" is not a directory of the repository',
        hint: 'did you mean "0_schema"?',
      },
      {
        severity: 'error',
        code: 'unknown-directory',
        message: 'environments.all.exclude_directories: "nothing_like_it" is not a directory of the repository',
      },
    ]);
  });

  it('suggests the numbered directory for a name without its number', () => {
    const config = makeConfig({ all: { excludeDirectories: ['finalize'] } });
    expect(withCode(validate(config, 'all'), 'unknown-directory')[0]?.hint).toBe('did you mean "99_finalize"?');
  });

  it('suggests the numbered directory under the same parent for a nested path without its number', () => {
    const repository = ['a/20240101_finalize/x.sql', 'db/20240101_finalize/y.sql', 'db/schema/z.sql'];
    const config = makeConfig({ all: { excludeDirectories: ['db/finalize'] } });
    expect(withCode(validate(config, 'all', repository), 'unknown-directory')[0]?.hint).toBe('did you mean "db/20240101_finalize"?');
  });

  it('explains that a plain name matches only top-level directories', () => {
    const repository = ['db/seed/a.sql', 'db/schema/b.sql'];
    const config = makeConfig({ all: { excludeDirectories: ['seed'] } });
    expect(withCode(validate(config, 'all', repository), 'unknown-directory')).toEqual([
      {
        severity: 'error',
        code: 'unknown-directory',
        message: 'environments.all.exclude_directories: "seed" is not a directory of the repository',
        hint: 'did you mean "db/seed"? a name without "/" matches a top-level directory only',
      },
    ]);
  });

  it('keeps the top-level-only explanation for plain names: a path with a / gets the plain suggestion', () => {
    const repository = ['x/db/seed/a.sql', 'x/db/schema/b.sql'];
    const config = makeConfig({ all: { excludeDirectories: ['db/seed'] } });
    expect(withCode(validate(config, 'all', repository), 'unknown-directory')[0]?.hint).toBe('did you mean "x/db/seed"?');
  });

  it('suggests only top-level directories for a plain name', () => {
    const repository = ['x/ab/f.sql', 'y/g.sql'];
    const config = makeConfig({ all: { excludeDirectories: ['x_ab'] } });
    expect(withCode(validate(config, 'all', repository), 'unknown-directory')).toEqual([
      {
        severity: 'error',
        code: 'unknown-directory',
        message: 'environments.all.exclude_directories: "x_ab" is not a directory of the repository',
      },
    ]);
  });

  it('drops only a leading number when matching a name without its number', () => {
    // Without the anchor, seed_2_data would pass for seed_data; the closer seed_dat is the better guess.
    const repository = ['seed_2_data/a.sql', 'seed_dat/b.sql'];
    const config = makeConfig({ all: { excludeDirectories: ['seed_data'] } });
    expect(withCode(validate(config, 'all', repository), 'unknown-directory')[0]?.hint).toBe('did you mean "seed_dat"?');
  });

  it('accepts nested directory paths that exist', () => {
    const repository = ['db/seed/a.sql', 'db/schema/b.sql'];
    const config = makeConfig({ all: { includeDirectories: ['db/seed', 'db'] }, rest: { includeDirectories: ['db/schema'] } });
    expect(validate(config, 'all', repository)).toEqual([]);
  });

  it('warns about globs that match nothing', () => {
    const config = makeConfig({
      all: {
        includeDirectories: ['*', '*_fixtures'],
        excludeDirectories: ['tmp/**'],
        includeFiles: ['0_schema/*.sql', 'extra/*.sql'],
        excludeFiles: ['prod_*.sql'],
      },
    });
    expect(withCode(validate(config, 'all'), 'pattern-matches-nothing')).toEqual([
      {
        severity: 'warning',
        code: 'pattern-matches-nothing',
        message: 'environments.all.include_directories: "*_fixtures" matches no directory',
      },
      { severity: 'warning', code: 'pattern-matches-nothing', message: 'environments.all.exclude_directories: "tmp/**" matches no directory' },
      { severity: 'warning', code: 'pattern-matches-nothing', message: 'environments.all.include_files: "extra/*.sql" matches no file' },
      {
        severity: 'warning',
        code: 'pattern-matches-nothing',
        message: 'environments.all.exclude_files: "prod_*.sql" matches no file',
        hint: 'patterns match the whole path relative to the repository: did you mean "**/prod_*.sql"?',
      },
    ]);
  });

  it('warns about no plain directory name, and no glob that matches some directory', () => {
    const config = makeConfig({ all: { includeDirectories: ['1_*', '0_schema'], excludeDirectories: ['nothing_like_it'] } });
    expect(withCode(validate(config, 'all'), 'pattern-matches-nothing')).toEqual([]);
  });

  it('offers **/ only for a file pattern without a /: one with a / already names its directories', () => {
    const config = makeConfig({ all: { includeFiles: ['schema/tables.sql'] } });
    expect(withCode(validate(config, 'all', ['db/schema/tables.sql']), 'pattern-matches-nothing')).toEqual([
      { severity: 'warning', code: 'pattern-matches-nothing', message: 'environments.all.include_files: "schema/tables.sql" matches no file' },
    ]);
  });

  it('reports an empty selection as an error, before the warnings', () => {
    const config = makeConfig({ none: { includeDirectories: ['0_schema'], excludeFiles: ['**/*.sql', 'nothing/*.sql'] } });
    const issues = validate(config, 'none');
    expect(issues[0]).toEqual({
      severity: 'error',
      code: 'empty-selection',
      message: 'environment "none" selects no file',
      hint: "none of the repository's 8 files passes its rules: check include_directories and include_files",
    });
    expect(issues.slice(1).every((issue) => issue.severity === 'warning')).toBe(true);
    expect(withCode(validate(makeConfig({ none: {} }), 'none', []), 'empty-selection')[0]?.hint).toBe('the repository has no SQL files');
    expect(withCode(validate(config, 'none', ['0_schema/a.sql']), 'empty-selection')[0]?.hint).toBe(
      "none of the repository's 1 file passes its rules: check include_directories and include_files",
    );
  });

  it('lists files no environment selects in one warning, at most 10 of them', () => {
    const config = makeConfig({ local: { includeDirectories: ['0_schema', '1_seed_common'] }, production: { includeDirectories: ['0_schema', '6_migration'] } });
    expect(withCode(validate(config, 'local'), 'unselected-file')).toEqual([
      {
        severity: 'warning',
        code: 'unselected-file',
        message: '2 files are selected by no environment: 2_seed_backend/orders.sql, 99_finalize/grants.sql',
        hint: 'add them to an environment (include_directories or include_files), or leave them out of the repository with [repository] exclude_patterns',
      },
    ]);
    const many = Array.from({ length: 12 }, (_, i) => `9_extra/${String(i).padStart(2, '0')}.sql`);
    const [warning, ...rest] = withCode(validate(makeConfig({ s: { includeDirectories: ['0_schema'] } }), 's', ['0_schema/a.sql', ...many]), 'unselected-file');
    expect(rest).toEqual([]);
    expect(warning?.message).toBe(`12 files are selected by no environment: ${many.slice(0, 10).join(', ')} and 2 more`);
    const ten = withCode(validate(makeConfig({ s: { includeDirectories: ['0_schema'] } }), 's', ['0_schema/a.sql', ...many.slice(0, 10)]), 'unselected-file');
    expect(ten[0]?.message).toBe(`10 files are selected by no environment: ${many.slice(0, 10).join(', ')}`);
    const one = validate(makeConfig({ s: { includeDirectories: ['0_schema'] } }), 's', ['0_schema/a.sql', '5_x/b.sql']);
    expect(withCode(one, 'unselected-file')[0]?.message).toBe('1 file is selected by no environment: 5_x/b.sql');
  });

  it('warns when production selects seed, test or dev data, once per directory', () => {
    const config = makeConfig({ production: { excludeFiles: ['**/prod_*.sql'] } });
    expect(withCode(validate(config, 'production'), 'production-dev-data')).toEqual([
      {
        severity: 'warning',
        code: 'production-dev-data',
        message: 'environment "production" selects 1 file from 1_seed_common/, which looks like seed data',
        hint:
          '"production" counts as production (its name is "production"), and production must never receive development or test data: ' +
          'add exclude_directories = ["1_seed_common"] to [environments.production], or rename it if it is real production data',
      },
      {
        severity: 'warning',
        code: 'production-dev-data',
        message: 'environment "production" selects 1 file from 2_seed_backend/, which looks like seed data',
        hint:
          '"production" counts as production (its name is "production"), and production must never receive development or test data: ' +
          'add exclude_directories = ["2_seed_backend"] to [environments.production], or rename it if it is real production data',
      },
      {
        severity: 'warning',
        code: 'production-dev-data',
        message: 'environment "production" selects 6_migration/test_fixture.sql, which looks like test data',
        hint:
          '"production" counts as production (its name is "production"), and production must never receive development or test data: ' +
          'add exclude_files = ["6_migration/test_fixture.sql"] to [environments.production], or rename it if it is real production data',
      },
    ]);
  });

  it('groups the files of a dev directory and ignores words inside other words', () => {
    const repository = ['0_schema/device.sql', '0_schema/latest.sql', 'data/samples/a.sql', 'data/samples/b.sql', 'data/dev/c.sql'];
    const issues = withCode(validate(makeConfig({ PROD: {} }), 'PROD', repository), 'production-dev-data');
    expect(issues.map((issue) => issue.message)).toEqual([
      'environment "PROD" selects 2 files from data/samples/, which looks like sample data',
      'environment "PROD" selects 1 file from data/dev/, which looks like development data',
    ]);
  });

  it('treats an environment deployed to a remote that requires confirmation as production', () => {
    const remotes = { main: { environment: 'live', requireConfirmation: true }, scratch: { environment: 'qa' } };
    const config = makeConfig({ live: { includeDirectories: ['1_seed_common'] }, qa: { includeDirectories: ['1_seed_common'] } }, { remotes });
    const [issue] = withCode(validate(config, 'live'), 'production-dev-data');
    expect(issue?.message).toBe('environment "live" selects 2 files from 1_seed_common/, which looks like seed data');
    expect(issue?.hint).toMatch(/^"live" counts as production \(remote "main", which requires confirmation, deploys it\)/);
    expect(withCode(validate(config, 'qa'), 'production-dev-data')).toEqual([]);
  });

  it('leaves development data alone in environments that are not production-like', () => {
    expect(withCode(validate(makeConfig({ local: {}, staging: {} }), 'local'), 'production-dev-data')).toEqual([]);
  });

  it('warns when a production-like environment selects what another one excludes', () => {
    const config = makeConfig(
      {
        production: { includeDirectories: ['0_schema', '6_migration'], excludeFiles: ['**/test_*.sql'] },
        live: { includeDirectories: ['0_schema', '6_migration'], excludeFiles: ['**/prod_*.sql'] },
      },
      { remotes: { eu: { environment: 'live', requireConfirmation: true } } },
    );
    expect(withCode(validate(config, 'live'), 'sensitive-file')).toEqual([
      {
        severity: 'warning',
        code: 'sensitive-file',
        message: 'environment "live" selects 6_migration/test_fixture.sql, which "production" excludes (exclude_files "**/test_*.sql")',
        hint:
          '"live" and "production" are both production-like, so what "production" keeps out on purpose should not reach "live" either: ' +
          'exclude it in [environments.live] too, or narrow the rule of "production"',
      },
    ]);
    // live's prod_*.sql exclusion touches nothing production selects.
    expect(withCode(validate(config, 'production'), 'sensitive-file')).toEqual([]);
  });

  it('groups sensitive files per rule of the other environment', () => {
    const config = makeConfig({
      prod: { excludeDirectories: ['1_seed_common', '2_seed_backend'] },
      production: {},
    });
    expect(withCode(validate(config, 'production'), 'sensitive-file').map((issue) => issue.message)).toEqual([
      'environment "production" selects 2 files that "prod" excludes (exclude_directories "1_seed_common"): 1_seed_common/prod_secrets.sql, 1_seed_common/users.sql',
      'environment "production" selects 2_seed_backend/orders.sql, which "prod" excludes (exclude_directories "2_seed_backend")',
    ]);
  });

  it('does not call a file sensitive when the other environment only leaves it out of its includes', () => {
    const config = makeConfig({ prod: { includeDirectories: ['0_schema'] }, production: {} });
    expect(withCode(validate(config, 'production'), 'sensitive-file')).toEqual([]);
  });

  it('does not call a file sensitive when the excluding environment takes it back with include_files', () => {
    const config = makeConfig({
      prod: { excludeDirectories: ['1_seed_common'], includeFiles: ['1_seed_common/users.sql'] },
      production: { includeDirectories: ['1_seed_common'], excludeFiles: ['**/prod_*.sql'] },
    });
    expect(withCode(validate(config, 'production'), 'sensitive-file')).toEqual([]);
  });

  it('reports no sensitive file where only one side is production-like', () => {
    const config = makeConfig({
      local: { includeDirectories: ['0_schema', '1_seed_common', '6_migration'], excludeDirectories: ['99_finalize'], excludeFiles: ['**/prod_*.sql'] },
      production: { excludeDirectories: ['1_seed_common', '2_seed_backend'], excludeFiles: ['**/test_*.sql'] },
    });
    // production takes 99_finalize and nothing else local excludes; local takes the seeds production excludes.
    expect(withCode(validate(config, 'production'), 'sensitive-file')).toEqual([]);
    expect(withCode(validate(config, 'local'), 'sensitive-file')).toEqual([]);
  });

  it('is quiet about the original DBFast example apart from its unselected files', () => {
    const config = makeConfig({
      local: { includeDirectories: ['0_schema', '1_seed_common'], excludeFiles: ['**/prod_*.sql'] },
      production: { includeDirectories: ['0_schema', '6_migration'], excludeFiles: ['**/test_*.sql'] },
    });
    expect(validate(config, 'production').map((issue) => issue.code)).toEqual(['unselected-file']);
    expect(validate(config, 'local').map((issue) => issue.code)).toEqual(['unselected-file']);
  });
});
