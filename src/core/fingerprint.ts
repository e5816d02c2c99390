import { createHash } from 'node:crypto';
import type { ScannedFile } from './scan.js';

/**
 * Bumped when dbfast changes how files become a template, so old templates are rebuilt. 2: templates
 * record the files they included (older ones may hold a changed include without knowing it) and
 * keep their metadata out of the user's database comment.
 */
export const FORMAT_VERSION = 2;

export interface FingerprintInput {
  files: Pick<ScannedFile, 'relativePath' | 'hash'>[];
  /** Settings that decide which files are selected (patterns, environment rules). */
  selection: unknown;
}

/**
 * Everything that decides a template's content: the ordered relative paths and content hashes of
 * the selected files, the selection settings and the format version. mtimes are left out on
 * purpose: touching a file is not a change.
 */
export function computeFingerprint({ files, selection }: FingerprintInput): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ format: FORMAT_VERSION, selection }));
  for (const file of files) hash.update(`\n${file.relativePath}\0${file.hash}`);
  return hash.digest('hex');
}
