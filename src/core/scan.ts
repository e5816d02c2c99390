import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, type Stats, statSync } from 'node:fs';
import { readdir, readFile, readlink, realpath, stat } from 'node:fs/promises';
import { join, posix, resolve, sep } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { DbfastError } from './errors.js';
import { relativePosix, writeFileAtomic } from './files.js';
import { compileSelection, type PathSelection } from './patterns.js';

export interface ScannedFile {
  /**
   * POSIX separators, relative to the repository root, e.g. '1_seed/02_users.sql'; in a repository of several,
   * after its name: 'shared/1_seed/02_users.sql'.
   */
  relativePath: string;
  /** The name of the repository of several (ScanOptions.name) the file belongs to. */
  repository?: string;
  absolutePath: string;
  size: number;
  mtimeMs: number;
  /** sha256 hex of the raw bytes. */
  hash: string;
}

export interface ScanOptions {
  root: string;
  /** Globs matched against `relativePath`; default `['**\/*.sql']`. */
  include?: string[];
  /** Globs that win over `include`; default `[]`. */
  exclude?: string[];
  /** Stat cache; when given, files whose size, mtime, ctime and inode are unchanged are not re-read. */
  cachePath?: string;
  /** Errors name files relative to this folder (default `root`): dbfast passes the dbfast.toml folder, as for SQL errors. */
  shownFrom?: string;
  /**
   * The repository's name when a project has several: each file's relativePath, and the paths errors show, start
   * with `<name>/` (instead of `shownFrom`), so that files of different repositories never share a path. Patterns
   * still match the path inside the repository.
   */
  name?: string;
}

export interface ScanResult {
  root: string;
  /** In execution order (see `compareExecutionOrder`). */
  files: ScannedFile[];
  /** Files whose content was read this time. */
  hashedFiles: number;
}

/**
 * The stat cache is tab-separated text, `size, mtimeMs, ctimeMs, ino, hash, path` per line (the path last, so
 * tabs in names are harmless): it parses in a third of the time JSON takes for 10,000 entries, and each line is
 * split only when its file is looked at.
 */
const CACHE_HEADER = 'dbfast-scan-cache 3';
/** size, mtimeMs, ctimeMs, ino and hash. */
const FIELDS_BEFORE_PATH = 5;

interface StatCache {
  writtenAtMs: number;
  /** Relative path to `size\tmtimeMs\tctimeMs\tino\thash`. */
  entries: Map<string, string>;
}

interface Folder {
  absolutePath: string;
  relativePath: string;
  realPath: string;
  parent?: Folder;
}

type FoundFile = Pick<ScannedFile, 'relativePath' | 'absolutePath'>;

/** A relative path as errors show it. */
type Show = (relativePath: string) => string;

/** An edit this close to a cache write can keep size and mtime (coarse clocks): git's racy-git rule. */
const RACY_WINDOW_MS = 2000;
/**
 * Per-file stat and read are synchronous: on small files the thread-pool round trips of the async API cost
 * 2-3x more than the work itself. Yielding between batches keeps the event loop responsive.
 */
const FILES_PER_TURN = 128;

/**
 * The repository's files in execution order, each with its sha256. Throws REPOSITORY_NOT_FOUND, SYMLINK_LOOP or
 * FILE_UNREADABLE; finding no file is not an error here (callers decide).
 */
export async function scanRepository(options: ScanOptions): Promise<ScanResult> {
  const startedAtMs = Date.now();
  const root = resolve(options.root);
  const selection = compileSelection(options.include ?? ['**/*.sql'], options.exclude ?? []);
  const { name } = options;
  const shownRoot = name ?? (options.shownFrom === undefined ? '' : relativePosix(options.shownFrom, root));
  const show: Show = (path) => (shownRoot ? posix.join(shownRoot, path) : path);
  const rootFolder = { absolutePath: root, relativePath: '', realPath: await resolveRoot(root) };
  const [found, cache] = await Promise.all([
    findFiles(rootFolder, selection, show),
    options.cachePath === undefined ? undefined : readStatCache(options.cachePath),
  ]);
  const { files, entries, hashedFiles } = await inspectFiles(sortInExecutionOrder(found), cache, { show });
  if (options.cachePath !== undefined) await updateStatCache(options.cachePath, cache, { writtenAtMs: startedAtMs, entries }, hashedFiles);
  if (name === undefined) return { root, files, hashedFiles };
  return { root, files: files.map((file) => ({ ...file, relativePath: `${name}/${file.relativePath}`, repository: name })), hashedFiles };
}

/**
 * Each file's sha256 through the stat cache at `cachePath`, for files found otherwise than by a scan
 * (those a build included). `relativePath` is the cache key and the name in errors. Files that do not
 * exist are left out of the result.
 */
export async function hashExistingFiles(found: FoundFile[], cachePath: string): Promise<ScannedFile[]> {
  const startedAtMs = Date.now();
  const cache = await readStatCache(cachePath);
  const { files, entries, hashedFiles } = await inspectFiles(found, cache, { skipMissing: true });
  await updateStatCache(cachePath, cache, { writtenAtMs: startedAtMs, entries }, hashedFiles);
  return files;
}

/** Numbered components compare as numbers (`2_seed` < `10_finalize`), then as plain strings so order is total. */
export function compareExecutionOrder(a: string, b: string): number {
  return compareExecutionKeys(executionKey(a), executionKey(b));
}

/** Keys are computed once per path: parsing inside the comparator made sorting 10,000 paths take ~90 ms. */
function sortInExecutionOrder<T extends { relativePath: string }>(items: T[]): T[] {
  return items
    .map((item) => ({ item, key: executionKey(item.relativePath) }))
    .sort((a, b) => compareExecutionKeys(a.key, b.key))
    .map(({ item }) => item);
}

interface ComponentKey {
  name: string;
  /** The leading run of digits without its leading zeros, compared by length then digits: exact at any size. */
  number?: string;
}

function executionKey(path: string): ComponentKey[] {
  return path.split('/').map((name) => ({ name, number: leadingNumber(name) }));
}

function leadingNumber(name: string): string | undefined {
  let end = 0;
  while (isDigit(name.charCodeAt(end))) end++;
  let start = 0;
  // name[end] is no digit, so the zeros stop at end.
  while (name[start] === '0') start++;
  return end === 0 ? undefined : name.slice(start, end);
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

function compareExecutionKeys(left: ComponentKey[], right: ComponentKey[]): number {
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    const a = left[i]!;
    const b = right[i]!;
    if (a.number !== undefined && b.number !== undefined) {
      const byNumber = a.number.length - b.number.length || compareCodeUnits(a.number, b.number);
      if (byNumber !== 0) return byNumber;
    }
    const byName = compareCodeUnits(a.name, b.name);
    if (byName !== 0) return byName;
  }
  return left.length - right.length;
}

function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The repository folder is named by its absolute path: it is configuration, not a file in the repository. */
async function resolveRoot(root: string): Promise<string> {
  const stats = await stat(root).catch((cause) => {
    if (!isMissing(cause)) throw unreadable(root, cause, 'folder');
    throw new DbfastError('REPOSITORY_NOT_FOUND', `repository folder not found: ${root}`, {
      hint: 'create it, or set [repository] path in dbfast.toml (dbfast init writes one)',
    });
  });
  if (!stats.isDirectory()) {
    throw new DbfastError('REPOSITORY_NOT_FOUND', `repository path is a file, not a folder: ${root}`, {
      hint: 'set [repository] path in dbfast.toml to the folder that holds the numbered SQL folders',
    });
  }
  return realpath(root);
}

/**
 * Files under `root` that `selection` selects, in no particular order; symbolic links are followed. Only
 * folders that could hold a selected file are entered and only links that could be one are resolved, so a
 * dangling editor lock file (`.#01_users.sql`) or a loop in a folder no pattern reaches is never looked at.
 */
async function findFiles(root: Folder, selection: PathSelection, show: Show): Promise<FoundFile[]> {
  const found: FoundFile[] = [];

  // Unbounded parallelism is safe: readdir opens and closes its folder within one call, holding no descriptor.
  async function walk(folder: Folder): Promise<void> {
    const entries = await readdir(folder.absolutePath, { withFileTypes: true }).catch((cause) => {
      throw unreadable(show(folder.relativePath) || '.', cause, 'folder');
    });
    const pending: Promise<void>[] = [];
    for (const entry of entries) {
      const relativePath = folder.relativePath === '' ? entry.name : `${folder.relativePath}/${entry.name}`;
      // Plain concatenation: path.join re-normalises every path and cost ~5 ms per 10,000 files.
      const absolutePath = `${folder.absolutePath}${sep}${entry.name}`;
      if (entry.isDirectory()) {
        if (!selection.mayContain(relativePath)) continue;
        pending.push(walk({ absolutePath, relativePath, realPath: join(folder.realPath, entry.name), parent: folder }));
      } else if (entry.isSymbolicLink()) {
        if (selection.selects(relativePath) || selection.mayContain(relativePath)) pending.push(follow(folder, relativePath, absolutePath));
      } else if (selection.selects(relativePath)) {
        found.push({ relativePath, absolutePath });
      }
    }
    await Promise.all(pending);
  }

  async function follow(parent: Folder, relativePath: string, absolutePath: string): Promise<void> {
    if (!(await isLinkToFolder(absolutePath, show(relativePath)))) {
      if (selection.selects(relativePath)) found.push({ relativePath, absolutePath });
      return;
    }
    if (!selection.mayContain(relativePath)) return;
    const realPath = await realpath(absolutePath);
    for (let ancestor: Folder | undefined = parent; ancestor; ancestor = ancestor.parent) {
      if (ancestor.realPath !== realPath) continue;
      const target = show(ancestor.relativePath) || '.';
      throw new DbfastError('SYMLINK_LOOP', `symbolic link loop: points back to ${target}`, { file: show(relativePath) });
    }
    await walk({ absolutePath, relativePath, realPath, parent });
  }

  await walk(root);
  return found;
}

async function isLinkToFolder(absolutePath: string, shown: string): Promise<boolean> {
  try {
    return (await stat(absolutePath)).isDirectory();
  } catch (cause) {
    if (errorCode(cause) === 'ELOOP') {
      throw new DbfastError('SYMLINK_LOOP', 'symbolic link loop: the link never resolves', { file: shown });
    }
    if (!isMissing(cause)) throw unreadable(shown, cause, 'link');
    const target = await readlink(absolutePath).catch(() => undefined);
    const message = target === undefined ? 'dangling symbolic link' : `dangling symbolic link: ${target} does not exist`;
    throw new DbfastError('FILE_UNREADABLE', message, { file: shown, hint: 'restore its target or remove the link' });
  }
}

interface InspectOptions {
  /** A file that no longer exists is left out instead of failing. */
  skipMissing?: boolean;
  show?: Show;
}

async function inspectFiles(found: FoundFile[], cache: StatCache | undefined, options: InspectOptions = {}) {
  const show = options.show ?? ((path: string) => path);
  const trustedBeforeMs = (cache?.writtenAtMs ?? 0) - RACY_WINDOW_MS;
  const files: ScannedFile[] = [];
  const entries = new Map<string, string>();
  let hashedFiles = 0;
  for (const [index, { relativePath, absolutePath }] of found.entries()) {
    if (index > 0 && index % FILES_PER_TURN === 0) await yieldToEventLoop();
    let stats: Stats;
    try {
      stats = statSync(absolutePath);
    } catch (cause) {
      if (options.skipMissing && isMissing(cause)) continue;
      throw unreadable(show(relativePath), cause);
    }
    // A FIFO would block the read forever; devices and sockets are no SQL either.
    if (!stats.isFile()) {
      throw new DbfastError('FILE_UNREADABLE', 'not a regular file', { file: show(relativePath) });
    }
    const { size, mtimeMs, ctimeMs, ino } = stats;
    const cached = cache?.entries.get(relativePath);
    const statPart = `${size}\t${mtimeMs}\t${ctimeMs}\t${ino}\t`;
    // Only an entry whose size, mtime, ctime and inode all match the file is trusted. The ctime, as in git,
    // catches an edit that kept the size and had its mtime set back (touch -d, utimes): no call sets the ctime back.
    const reusable = cached?.startsWith(statPart) && /^[0-9a-f]{64}$/.test(cached.slice(statPart.length)) && mtimeMs < trustedBeforeMs;
    const hash = reusable ? cached!.slice(statPart.length) : orUnreadable(show(relativePath), () => hashFileSync(absolutePath));
    if (!reusable) hashedFiles++;
    files.push({ relativePath, absolutePath, size, mtimeMs, hash });
    entries.set(relativePath, statPart + hash);
  }
  return { files, entries, hashedFiles };
}

async function updateStatCache(cachePath: string, previous: StatCache | undefined, next: StatCache, hashedFiles: number): Promise<void> {
  if (previous && hashedFiles === 0 && previous.entries.size === next.entries.size) return;
  // Stamped with the start of the lookup, so a file edited while it ran is racily clean next time.
  await writeStatCache(cachePath, next);
}

/** A missing, corrupt or older cache only costs a full re-hash, so it is ignored rather than reported. */
async function readStatCache(cachePath: string): Promise<StatCache | undefined> {
  try {
    const lines = (await readFile(cachePath, 'utf8')).split('\n');
    const [header, writtenAt] = lines[0]!.split('\t');
    if (header !== CACHE_HEADER || !Number.isFinite(Number(writtenAt))) return undefined;
    const entries = new Map<string, string>();
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      // Whatever follows the tab that ends the hash is the path.
      let at = -1;
      for (let field = 0; field < FIELDS_BEFORE_PATH && (field === 0 || at !== -1); field++) at = line.indexOf('\t', at + 1);
      if (at !== -1) entries.set(line.slice(at + 1), line.slice(0, at));
    }
    return { writtenAtMs: Number(writtenAt), entries };
  } catch {
    return undefined;
  }
}

async function writeStatCache(cachePath: string, cache: StatCache): Promise<void> {
  // A path with a line break cannot be stored on one line: it is simply re-hashed every time.
  const lines = [`${CACHE_HEADER}\t${cache.writtenAtMs}`];
  for (const [path, stat] of cache.entries) if (!path.includes('\n')) lines.push(`${stat}\t${path}`);
  // The cache only saves time: a read-only or full disk must not fail the scan.
  await writeFileAtomic(cachePath, lines.join('\n')).catch(() => {});
}

const HASH_CHUNK_BYTES = 1 << 20;
const hashBuffer = Buffer.allocUnsafe(HASH_CHUNK_BYTES);

/** sha256 of a file read in 1 MiB pieces: a multi-gigabyte dump is hashed without being held in memory. */
function hashFileSync(path: string): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    // A regular file reads short only at its end: no extra read to see 0 bytes (10,000 small files).
    let read: number;
    do {
      read = readSync(fd, hashBuffer);
      hash.update(hashBuffer.subarray(0, read));
    } while (read === HASH_CHUNK_BYTES);
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

function orUnreadable<T>(shown: string, read: () => T): T {
  try {
    return read();
  } catch (cause) {
    throw unreadable(shown, cause);
  }
}

function unreadable(shown: string, cause: unknown, what: 'file' | 'folder' | 'link' = 'file'): DbfastError {
  const reason = errorCode(cause) || String(cause);
  return new DbfastError('FILE_UNREADABLE', `cannot read ${what}: ${reason}`, { file: shown, cause });
}

function isMissing(error: unknown): boolean {
  return ['ENOENT', 'ENOTDIR'].includes(errorCode(error));
}

function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException | undefined)?.code ?? '';
}
