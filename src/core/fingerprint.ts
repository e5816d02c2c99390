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
  return prefixFingerprints({ files, selection }, [files.length])[0]!;
}

/** The fingerprint of `files.slice(0, end)` for each of `ends` (ascending), in one pass. */
export function prefixFingerprints({ files, selection }: FingerprintInput, ends: number[]): string[] {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ format: FORMAT_VERSION, selection }));
  const fingerprints: string[] = [];
  let next = 0;
  for (const end of ends) {
    for (; next < end; next++) hash.update(`\n${files[next]!.relativePath}\0${files[next]!.hash}`);
    fingerprints.push(hash.copy().digest('hex'));
  }
  return fingerprints;
}
