import { pathToFileURL } from 'node:url';
import { directoriesOf, selectFiles, validateEnvironment } from '../dist/core/environments.js';

const FILES = 2000;
const DIRECTORIES = 50;
const RUNS = 101;
// Issue 4: "2,000 files across 50 directories filtered in well under 50 ms". Validation has no stated goal;
// validate-env runs it once per command, so the same budget applies.
const GOAL_MS = 50;

const KINDS = ['schema', 'seed_common', 'seed_backend', 'test_data', 'migration', 'functions', 'views', 'finalize'];

/** Filtering is pure, so the repository only needs to exist as paths: 40 top-level directories, 10 nested ones. */
function repositoryPaths() {
  const directories = [];
  for (let i = 0; i < 40; i++) directories.push(`${i}_${KINDS[i % KINDS.length]}`);
  for (let i = 0; directories.length < DIRECTORIES; i++) directories.push(`${i * 4 + 1}_${KINDS[1]}/fixtures_${i}`);
  const perDirectory = FILES / DIRECTORIES;
  return directories.flatMap((directory) =>
    Array.from({ length: perDirectory }, (_, file) => {
      const prefix = file % 10 === 0 ? 'test_' : file % 17 === 0 ? 'prod_' : '';
      return { relativePath: `${directory}/${String(file).padStart(3, '0')}_${prefix}part.sql` };
    }),
  );
}

const ENVIRONMENTS = {
  local: {
    includeDirectories: ['*_schema', '*_seed_*', '*_functions', '*_views', '*_finalize'],
    excludeFiles: ['**/prod_*.sql'],
  },
  staging: {
    includeDirectories: ['0_schema', '8_schema', '16_schema', '*_seed_common', '*_migration', '*_functions'],
    excludeDirectories: ['**/fixtures_*'],
    includeFiles: ['3_test_data/00[0-4]_*.sql'],
    excludeFiles: ['**/test_*.sql', '**/prod_*.sql'],
  },
  production: {
    excludeDirectories: ['*_seed_*', '*_test_data', '1_seed_common/fixtures_0'],
    includeFiles: ['1_seed_common/001_*.sql'],
    excludeFiles: ['**/test_*.sql'],
  },
  ci: {
    includeDirectories: ['0_schema', '4_migration', '12_migration', '*_views'],
    excludeDirectories: ['*_finalize'],
    includeFiles: ['**/test_*.sql'],
  },
};

const CONFIG = {
  configPath: null,
  projectDir: '/bench',
  stateDir: '/bench/.dbfast',
  database: null,
  templateName: 'bench_template',
  repository: { path: '/bench/db', include: ['**/*.sql'], exclude: [] },
  environments: ENVIRONMENTS,
  remotes: {},
  performance: {},
  validation: { requiredTables: [], requiredFunctions: [], testQueries: [] },
  backups: { directory: '/bench/.dbfast/backups', format: 'custom' },
  warnings: [],
};

/** Environment filtering of 2,000 paths in 50 directories (no disk: selection is pure). */
export async function benchEnvironments() {
  const files = repositoryPaths();
  const directories = directoriesOf(files);
  const environments = Object.values(ENVIRONMENTS);
  let selected = 0;
  const select = medianMs(() => {
    for (const settings of environments) selected += selectFiles(files, settings).length;
  });
  if (selected === 0) throw new Error('the benchmark environments select nothing');
  const validate = medianMs(() => validateEnvironment(CONFIG, 'production', files, directories));
  const label = `${FILES.toLocaleString('en-US')} files, ${DIRECTORIES} directories, ${environments.length} environments`;
  return [
    { name: `select files: ${label}`, dbfastMs: select, goalMs: GOAL_MS },
    { name: `validate production: ${label}`, dbfastMs: validate, goalMs: GOAL_MS },
  ];
}

function medianMs(run) {
  const timings = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    run();
    timings.push(performance.now() - started);
  }
  timings.sort((a, b) => a - b);
  return Math.round(timings[Math.floor(RUNS / 2)] * 100) / 100;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const rows = await benchEnvironments();
  console.table(rows.map((row) => ({ ...row, ok: row.dbfastMs <= row.goalMs ? 'yes' : 'NO' })));
}
