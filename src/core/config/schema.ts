/** The shape of dbfast.toml: each key, its type and its range. Checks that span several keys are in rules.ts. */
import * as v from 'valibot';
import { closest } from '../suggest.js';
import type { ConfigWarning } from './types.js';
import { SIZE_PATTERN } from '../size.js';
import { SSL_MODES } from './url.js';

export const CONFIG_FILE_NAME = 'dbfast.toml';

const TABLE = 'must be a table';
const STRING = 'must be a string';

export function isTable(value: unknown): value is Record<string, unknown> {
  return Object.prototype.toString.call(value) === '[object Object]';
}

/** `database.port`, `remotes[0]`: keys as users write them. */
export function joinKey(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  return parent === '' ? key : `${parent}.${key}`;
}

// valibot's object() and record() also accept arrays and dates, which TOML can produce where a
// table belongs, and they build a new output: so the table check has to come first.
function table<const Entries extends v.ObjectEntries>(entries: Entries) {
  const schema = v.object(entries, TABLE);
  return v.pipe(v.custom<v.InferInput<typeof schema>>(isTable, TABLE), schema);
}

function tableOf<const Item extends v.GenericSchema>(item: Item) {
  const schema = v.record(v.string(), item, TABLE);
  return v.pipe(v.custom<v.InferInput<typeof schema>>(isTable, TABLE), schema);
}

const text = () => v.optional(v.string(STRING));
const flag = () => v.optional(v.boolean('must be true or false'));
const stringList = () =>
  v.optional(
    v.custom<string[]>(
      (value) => Array.isArray(value) && value.every((item) => typeof item === 'string'),
      'must be a list of strings',
    ),
  );

function duration() {
  return v.optional(v.pipe(v.string(STRING), v.regex(/^\d+(\.\d+)?(ms|[smhdw])$/, 'must be a duration: 500ms, 5s, 30m, 12h, 7d, 2w')));
}

function size() {
  return v.optional(v.pipe(v.string(STRING), v.regex(SIZE_PATTERN, 'must be a size: 500MB, 20GB, 1TB')));
}

function integerAtLeast(min: 0 | 1) {
  const message = min === 0 ? 'must be a non-negative integer' : 'must be a positive integer';
  return v.optional(v.pipe(v.number(message), v.integer(message), v.minValue(min, message)));
}

/** It starts the paths of the repository's files (`shared/0_schema/01.sql`): no `/`, nothing a glob would read. */
const REPOSITORY_NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;
const PORT = 'must be a port number (1-65535)';
const ENV_NAME = 'must be the name of an environment variable (letters, digits and _)';

const connectionEntries = {
  url: text(),
  host: text(),
  port: v.optional(v.pipe(v.number(PORT), v.integer(PORT), v.minValue(1, PORT), v.maxValue(65535, PORT))),
  user: text(),
  database: text(),
  password_env: v.optional(v.pipe(v.string(STRING), v.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, ENV_NAME))),
  password_file: text(),
  connect_timeout_ms: integerAtLeast(1),
  sslmode: v.optional(v.picklist(SSL_MODES, `must be one of ${SSL_MODES.join(', ')}`)),
  sslrootcert: text(),
  sslcert: text(),
  sslkey: text(),
};

export const fileSchema = v.object({
  database: v.optional(table({ ...connectionEntries, template_name: text(), default_environment: text() })),
  repository: v.optional(
    table({
      path: text(),
      include_patterns: stringList(),
      exclude_patterns: stringList(),
      // Accepted for compatibility with the original Rust DBFast format, which required it.
      type: v.optional(v.unknown()),
    }),
  ),
  // name and path are required, and their absence is reported by rules.ts: valibot would call a missing key "must be a table".
  repositories: v.optional(
    v.array(
      table({
        name: v.optional(v.pipe(v.string(STRING), v.regex(REPOSITORY_NAME, 'must be a simple name: a letter, then letters, digits, _ or -'))),
        path: text(),
        include_patterns: stringList(),
        exclude_patterns: stringList(),
      }),
      'must be a list of [[repositories]] tables',
    ),
  ),
  environments: v.optional(
    tableOf(
      table({
        include_directories: stringList(),
        exclude_directories: stringList(),
        include_files: stringList(),
        exclude_files: stringList(),
        template_name: text(),
        description: text(),
      }),
    ),
  ),
  remotes: v.optional(
    tableOf(
      table({
        ...connectionEntries,
        name: text(),
        environment: text(),
        require_confirmation: flag(),
        allow_destructive: flag(),
        backup_before_deploy: flag(),
      }),
    ),
  ),
  performance: v.optional(
    table({
      max_concurrent_clones: integerAtLeast(1),
      clone_timeout_ms: integerAtLeast(1),
      build_timeout_ms: integerAtLeast(0),
      statement_batch_bytes: integerAtLeast(1),
      clone_strategy: v.optional(v.picklist(['auto', 'file_copy', 'wal_log'], 'must be "auto", "file_copy" or "wal_log"')),
      pool_size: integerAtLeast(0),
      layer_checkpoints: flag(),
      keep_templates: integerAtLeast(0),
      clone_ttl: duration(),
      max_disk: size(),
    }),
  ),
  validation: v.optional(
    table({
      required_tables: stringList(),
      required_functions: stringList(),
      test_queries: v.optional(
        v.array(
          v.union(
            [v.string(), table({ query: v.string(STRING), min_expected_results: integerAtLeast(0) })],
            'must be a query string or a table { query = "...", min_expected_results = N }',
          ),
          'must be a list',
        ),
      ),
    }),
  ),
  tools: v.optional(table({ pg_bin_dir: text() })),
  deploy: v.optional(table({ lock_timeout: duration(), lock_retries: integerAtLeast(0) })),
  backups: v.optional(
    table({
      directory: text(),
      keep_last: integerAtLeast(1),
      max_age: duration(),
      // The names of DBFast's configuration, kept working: keep_last and max_age in days.
      max_backups: integerAtLeast(1),
      retention_days: integerAtLeast(1),
      format: v.optional(v.picklist(['custom', 'directory'], 'must be "custom" or "directory" (pg_restore reads both)')),
    }),
  ),
});

export type FileSettings = v.InferOutput<typeof fileSchema>;
export type ConnectionSection = {
  [Key in keyof typeof connectionEntries]?: v.InferOutput<(typeof connectionEntries)[Key]>;
};

/** The parts of a valibot schema that describe where keys may appear. */
interface SchemaShape {
  type: string;
  entries?: Record<string, SchemaShape>;
  wrapped?: SchemaShape;
  value?: SchemaShape;
  item?: SchemaShape;
  options?: SchemaShape[];
  pipe?: SchemaShape[];
}

/** Warnings for the keys of `value` that the schema does not know, with a did-you-mean hint. */
export function unknownKeys(value: unknown, file: string): ConfigWarning[] {
  return keysUnknownTo(fileSchema as unknown as SchemaShape, value, '', file);
}

function keysUnknownTo(schema: SchemaShape, value: unknown, at: string, file: string): ConfigWarning[] {
  const last = schema.pipe?.at(-1);
  if (last) return keysUnknownTo(last, value, at, file);
  if (schema.wrapped) return keysUnknownTo(schema.wrapped, value, at, file);
  if (schema.type === 'union') {
    return (schema.options ?? []).flatMap((option) => keysUnknownTo(option, value, at, file));
  }
  if (schema.item && Array.isArray(value)) {
    const item = schema.item;
    return value.flatMap((child, index) => keysUnknownTo(item, child, joinKey(at, index), file));
  }
  if (!isTable(value) || !(schema.entries || schema.value)) return [];
  return Object.entries(value).flatMap(([key, child]) => {
    const keyPath = joinKey(at, key);
    const childSchema = schema.value ?? schema.entries?.[key];
    if (childSchema) return keysUnknownTo(childSchema, child, keyPath, file);
    const suggestion = closest(key, Object.keys(schema.entries ?? {}));
    const warning: ConfigWarning = { file, key: keyPath, message: `unknown key ${keyPath}` };
    return [suggestion ? { ...warning, hint: `did you mean "${suggestion}"?` } : warning];
  });
}
