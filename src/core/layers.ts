/**
 * A build's layers: the files of each top-level folder (`0_schema`, `1_seed_common`, ...), in
 * execution order, each with the fingerprint of everything up to and including it. A build keeps a
 * checkpoint database after each layer (checkpoints.ts), and a rebuild starts from the last one
 * whose fingerprint still matches, so editing a late seed file does not run the schema again.
 */
import { prefixFingerprints } from './fingerprint.js';
import type { ScannedFile } from './scan.js';
import type { SqlFile } from './sql/execute.js';

export interface Layer {
  /** The top-level folder (after the repository's name with [[repositories]]); '' or the name alone for files at a repository's root. */
  name: string;
  files: SqlFile[];
  /** Of every selected file up to the end of this layer, with the selection settings. */
  fingerprint: string;
}

/** `0_schema`; `shared/0_schema` for a file of one of [[repositories]] (its path starts with the repository's name). */
function layerName(file: ScannedFile): string {
  const segments = file.relativePath.split('/');
  const depth = file.repository === undefined ? 1 : 2;
  return segments.length > depth ? segments.slice(0, depth).join('/') : segments.slice(0, depth - 1).join('/');
}

/** `selected` and `files` are the same files (as scanned, as run); consecutive files of one top-level folder form a layer. */
export function layersOf(selected: ScannedFile[], files: SqlFile[], selection: unknown): Layer[] {
  const groups: { name: string; files: SqlFile[]; end: number }[] = [];
  selected.forEach((file, index) => {
    const name = layerName(file);
    const last = groups.at(-1);
    if (last?.name === name) {
      last.files.push(files[index]!);
      last.end = index + 1;
    } else groups.push({ name, files: [files[index]!], end: index + 1 });
  });
  const fingerprints = prefixFingerprints({ files: selected, selection }, groups.map((group) => group.end));
  return groups.map((group, index) => ({ name: group.name, files: group.files, fingerprint: fingerprints[index]! }));
}
