/**
 * dbfast.toml: schema.ts says what each key may hold, rules.ts what keys must agree on, parse.ts collects every
 * problem, load.ts finds the file and throws them together, settings.ts applies the defaults.
 */
export { displayPath, findConfigFile, type LoadConfigOptions, loadConfig } from './load.js';
export { CONFIG_FILE_NAME } from './schema.js';
export type {
  ConfigWarning,
  DatabaseSettings,
  DbfastConfig,
  EnvironmentSettings,
  RemoteSettings,
  RepositorySettings,
  ValidationSettings,
} from './types.js';
export { parseConnectionUrl } from './url.js';
