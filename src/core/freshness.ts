/**
 * Is a template up to date with the files? Its fingerprint covers the selected files; the files they
 * include (\i, nested, anywhere on disk) are only known once a build has read them, so the build
 * records each with the hash of the bytes it read, and the template stays fresh only while every
 * one of them still has that hash.
 */
import { join, resolve } from 'node:path';
import { relativePosix } from './files.js';
import { hashExistingFiles } from './scan.js';
import type { FileRead } from './sql/execute.js';

export interface IncludedFile {
  /** Relative to the project folder with POSIX separators (`inc/data.sql`, `../shared/roles.sql`): checkouts sharing a server agree. */
  path: string;
  /** sha256 hex of the bytes the build read. */
  hash: string;
}

export interface BuiltTemplate {
  name: string;
  fingerprint: string;
  /** Absent in templates built before dbfast recorded includes (format 1). */
  includes?: IncludedFile[];
}

/** Where included paths are relative to, and where their stat cache lives. */
export interface ProjectFolders {
  projectDir: string;
  stateDir: string;
}

/**
 * The files a build read besides the selected ones, as the template's metadata records them; also a
 * selected file whose bytes changed between the scan and the build, with the bytes the build read.
 */
export function recordedIncludes(reads: FileRead[], projectDir: string): IncludedFile[] {
  return reads.map(({ absolutePath, hash }) => ({ path: relativePosix(projectDir, absolutePath), hash }));
}

/** The template was built from the files with `fingerprint`, and from every file they include as they are now. */
export async function isFresh(template: BuiltTemplate | null, fingerprint: string, folders: ProjectFolders): Promise<boolean> {
  return template?.fingerprint === fingerprint && (await changedIncludes(template, folders)).length === 0;
}

/**
 * The included files whose bytes differ from what the template's build read; a missing file is
 * changed too. Hashed through a stat cache of the template's own, so a warm check reads no content.
 */
export async function changedIncludes(template: BuiltTemplate, folders: ProjectFolders): Promise<IncludedFile[]> {
  const includes = template.includes ?? [];
  if (includes.length === 0) return [];
  const paths = [...new Set(includes.map((file) => file.path))];
  const current = await hashExistingFiles(
    paths.map((path) => ({ relativePath: path, absolutePath: resolve(folders.projectDir, path) })),
    join(folders.stateDir, 'templates', `${template.name}.includes.tsv`),
  );
  const hashes = new Map(current.map((file) => [file.relativePath, file.hash]));
  return includes.filter((file) => hashes.get(file.path) !== file.hash);
}
