/** Finding and reading dbfast.toml, and the one error that lists every problem of it. */
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DbfastError } from '../errors.js';
import { parseConfigText } from './parse.js';
import { CONFIG_FILE_NAME } from './schema.js';
import { buildSettings } from './settings.js';
import type { ConfigIssue, DbfastConfig } from './types.js';

export interface LoadConfigOptions {
  /** `--config PATH`, relative to cwd. */
  configPath?: string;
  /** Where the search for dbfast.toml starts, and what paths in messages are relative to; default process.cwd(). */
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** Search upward from startDir for dbfast.toml. */
export function findConfigFile(startDir: string): string | null {
  for (let dir = path.resolve(startDir); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, CONFIG_FILE_NAME);
    if (statSync(candidate, { throwIfNoEntry: false })?.isFile()) return candidate;
    if (path.dirname(dir) === dir) return null;
  }
}

/** Throws CONFIG_NOT_FOUND, FILE_UNREADABLE, or CONFIG_INVALID with every problem found. */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<DbfastConfig> {
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const env = options.env ?? process.env;
  const configPath =
    options.configPath === undefined
      ? findConfigFile(cwd)
      : requireConfigFile(path.resolve(cwd, options.configPath), options.configPath);
  const projectDir = configPath === null ? cwd : path.dirname(configPath);
  const file = configPath === null ? CONFIG_FILE_NAME : displayPath(configPath, cwd);
  const text = configPath === null ? '' : await readConfigFile(configPath, file);
  const parsed = parseConfigText(text, { file, projectDir, env });
  if (parsed.errors.length > 0) throw configInvalid(parsed.errors);
  const stateDir = env.DBFAST_STATE_DIR ? path.resolve(cwd, env.DBFAST_STATE_DIR) : path.join(projectDir, '.dbfast');
  return {
    configPath,
    projectDir,
    stateDir,
    ...(env.DBFAST_STATE_DIR ? { stateDirFromEnv: true } : {}),
    ...buildSettings(parsed.settings, { projectDir, stateDir, env }),
    warnings: parsed.warnings,
  };
}

function requireConfigFile(absolute: string, asGiven: string): string {
  if (statSync(absolute, { throwIfNoEntry: false })?.isFile()) return absolute;
  throw new DbfastError('CONFIG_NOT_FOUND', 'config file not found', { file: asGiven });
}

async function readConfigFile(configPath: string, file: string): Promise<string> {
  try {
    return await readFile(configPath, 'utf8');
  } catch (cause) {
    const { code, message } = cause as NodeJS.ErrnoException;
    throw new DbfastError('FILE_UNREADABLE', `cannot read file: ${code ?? message}`, { file, cause });
  }
}

/** A path as users should see it: relative to `cwd` when inside it. */
export function displayPath(absolute: string, cwd: string): string {
  const relative = path.relative(cwd, absolute);
  const inside = relative !== '' && relative.split(path.sep)[0] !== '..' && !path.isAbsolute(relative);
  return inside ? relative : absolute;
}

/**
 * One problem is the error itself. Several are counted in the message and listed in `detail`, one per line with
 * its hint under it; the file is named once, in front, when every problem comes from it.
 */
function configInvalid(problems: ConfigIssue[]): DbfastError {
  const [first] = problems;
  if (problems.length === 1 && first) {
    const { file, line, column, hint } = first;
    return new DbfastError('CONFIG_INVALID', first.message, { file, line, column, hint });
  }
  const files = new Set(problems.map((problem) => problem.file));
  const file = files.size === 1 ? first?.file : undefined;
  const detail = problems.flatMap((problem) => [
    problem.file === file ? problem.message : `${problem.file}: ${problem.message}`,
    ...(problem.hint ? [`  hint: ${problem.hint}`] : []),
  ]);
  return new DbfastError('CONFIG_INVALID', `${problems.length} configuration problems`, { file, detail: detail.join('\n') });
}
