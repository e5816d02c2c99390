/**
 * The repository's include and exclude patterns: which files they select, and which folders could
 * hold a selected file. The scan enters only those folders, so whatever lies elsewhere (a dangling
 * link, a link loop, an unreadable folder) cannot fail a build.
 */
import picomatch from 'picomatch';

export interface PathSelection {
  /** The file at this path (relative to the repository, POSIX separators) is selected. */
  selects(relativePath: string): boolean;
  /** A file somewhere beneath this folder could be selected. */
  mayContain(relativePath: string): boolean;
}

export function compileSelection(include: string[], exclude: string[]): PathSelection {
  const isIncluded = picomatch(include);
  const isExcluded = picomatch(exclude);
  const reachers = include.map(reachBeneath);
  // `folder/**` matches everything beneath any folder it matches.
  const excludesAllBeneath = picomatch(exclude.filter((pattern) => pattern.endsWith('/**')));
  return {
    selects: (path) => isIncluded(path) && !isExcluded(path),
    mayContain: (folder) => !excludesAllBeneath(folder) && reachers.some((reaches) => reaches(folder.split('/'))),
  };
}

const GLOBSTAR = Symbol('**');
type Segment = ((name: string) => boolean) | typeof GLOBSTAR;

/** Whether `pattern` could match a path beneath a folder, given the folder's path segments. */
function reachBeneath(pattern: string): (folder: string[]) => boolean {
  const { parts = [], negated, negatedExtglob } = picomatch.scan(pattern, { parts: true });
  // A negated pattern matches what it does not name, and a part holding a slash (inside braces or an
  // extglob) spans folders: rather than reason about either, assume it reaches everywhere.
  if (negated || negatedExtglob || parts.some((part) => part === '' || part.includes('/'))) return () => true;
  const segments: Segment[] = parts.map((part) => (part === '**' ? GLOBSTAR : picomatch(part)));
  return (folder) => reaches(segments, 0, folder, 0);
}

function reaches(pattern: Segment[], at: number, folder: string[], depth: number): boolean {
  // Past the folder's last segment, whatever is left of the pattern names things beneath it.
  if (depth === folder.length) return at < pattern.length;
  if (at === pattern.length) return false;
  const segment = pattern[at]!;
  if (segment !== GLOBSTAR) return segment(folder[depth]!) && reaches(pattern, at + 1, folder, depth + 1);
  // Like picomatch's `**` (without the dot option), a globstar never matches a name starting with a dot.
  return reaches(pattern, at + 1, folder, depth) || (!folder[depth]!.startsWith('.') && reaches(pattern, at, folder, depth + 1));
}
