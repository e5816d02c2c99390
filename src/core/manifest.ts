/**
 * The build manifest: which file hashes this checkout built a template from, kept in the state
 * folder, so `status --verbose` can name the files changed since. The server's metadata only
 * holds the fingerprint, which says that something changed, not what.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { DbfastConfig } from './config/index.js';
import { writeFileAtomic } from './files.js';
import type { IncludedFile } from './freshness.js';
import { type RepositoryState, scannedPath } from './repository.js';

export interface ChangedFiles {
  added: string[];
  removed: string[];
  modified: string[];
}

interface BuildManifest {
  fingerprint: string;
  files: Record<string, string>;
}

function manifestPath(stateDir: string, templateName: string): string {
  return join(stateDir, 'templates', `${templateName}.json`);
}

/** Best effort: it only serves `status --verbose`, so failing to write it never fails a finished build. */
export async function recordBuild(stateDir: string, templateName: string, state: RepositoryState): Promise<void> {
  const manifest: BuildManifest = {
    fingerprint: state.fingerprint,
    files: Object.fromEntries(state.selected.map((file) => [file.relativePath, file.hash])),
  };
  await writeFileAtomic(manifestPath(stateDir, templateName), JSON.stringify(manifest)).catch(() => {});
}

/**
 * The files changed since this checkout built the template with `fingerprint`; null when it did not
 * (another checkout built it, or the manifest is gone). Paths are as the scan names them (see
 * `scannedPath`): an included file outside `[repository]` starts with `../`.
 */
export async function changedSinceBuild(
  config: DbfastConfig,
  template: { name: string; fingerprint: string },
  state: RepositoryState,
  changedIncludes: IncludedFile[],
): Promise<ChangedFiles | null> {
  const manifest = await readFile(manifestPath(config.stateDir, template.name), 'utf8').then(
    (text) => JSON.parse(text) as BuildManifest,
    () => null,
  );
  if (manifest?.fingerprint !== template.fingerprint) return null;
  const current = new Map(state.selected.map((file) => [file.relativePath, file.hash]));
  const includes = changedIncludes.map(({ path }) => scannedPath(config, resolve(config.projectDir, path)));
  const modified = [...current].filter(([path, hash]) => path in manifest.files && manifest.files[path] !== hash).map(([path]) => path);
  return {
    added: [...current.keys()].filter((path) => !(path in manifest.files)),
    removed: Object.keys(manifest.files).filter((path) => !current.has(path)),
    modified: [...new Set([...modified, ...includes])],
  };
}
