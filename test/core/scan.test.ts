import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DbfastError } from '../../src/core/errors.js';
import { compareExecutionOrder, hashExistingFiles, type ScanOptions, scanRepository } from '../../src/core/scan.js';
import { writeFiles } from '../helpers/repo.js';

let base: string;
let root: string;
let cachePath: string;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'dbfast-scan-'));
  root = join(base, 'repo');
  cachePath = join(base, 'state', 'scan-cache.json');
  await mkdir(root);
});

afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

const AN_HOUR_AGO_S = Math.floor(Date.now() / 1000) - 3600;

async function scanPaths(options: Partial<ScanOptions> = {}): Promise<string[]> {
  const { files } = await scanRepository({ root, ...options });
  return files.map((file) => file.relativePath);
}

async function scanError(options: Partial<ScanOptions> = {}): Promise<DbfastError> {
  const error = await scanRepository({ root, ...options }).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(DbfastError);
  return error as DbfastError;
}

/** Whole-second mtimes survive the round trip through utimes exactly, so "restored" really means equal. */
async function setMtime(relativePath: string, seconds: number): Promise<void> {
  await utimes(join(root, relativePath), seconds, seconds);
}

interface CacheFile {
  version: number;
  writtenAtMs: number;
  entries: Record<string, { size: number; mtimeMs: number; ctimeMs: number; ino: number; hash: string }>;
}

/** The documented cache format: a header line, then `size, mtimeMs, ctimeMs, ino, hash, path` tab-separated per file. */
async function readCache(): Promise<CacheFile> {
  const [header, ...lines] = (await readFile(cachePath, 'utf8')).split('\n');
  const [magic, writtenAtMs] = header!.split('\t');
  const entries: CacheFile['entries'] = {};
  for (const line of lines) {
    const [size, mtimeMs, ctimeMs, ino, hash, ...path] = line.split('\t');
    entries[path.join('\t')] = { size: Number(size), mtimeMs: Number(mtimeMs), ctimeMs: Number(ctimeMs), ino: Number(ino), hash: hash! };
  }
  return { version: Number(magic!.split(' ')[1]), writtenAtMs: Number(writtenAtMs), entries };
}

async function writeCache(cache: CacheFile): Promise<void> {
  const lines = Object.entries(cache.entries).map(([path, e]) => [e.size, e.mtimeMs, e.ctimeMs, e.ino, e.hash, path].join('\t'));
  await writeFile(cachePath, [`dbfast-scan-cache ${cache.version}\t${cache.writtenAtMs}`, ...lines].join('\n'));
}

describe('compareExecutionOrder', () => {
  const sorted = (paths: string[]) => [...paths].sort(compareExecutionOrder);

  it('orders leading numbers numerically, component by component', () => {
    expect(sorted(['10_finalize/a.sql', '2_seed/b.sql', '0_schema/c.sql'])).toEqual([
      '0_schema/c.sql',
      '2_seed/b.sql',
      '10_finalize/a.sql',
    ]);
    expect(sorted(['1/10.sql', '1/9.sql', '1/0102_y.sql', '1/0101_x.sql'])).toEqual([
      '1/9.sql',
      '1/10.sql',
      '1/0101_x.sql',
      '1/0102_y.sql',
    ]);
  });

  it('orders nested folders before later siblings and files and folders by name', () => {
    const paths = ['1_seed/10_z.sql', '1_seed/03_dir/9.sql', '1_seed/05_a.sql', '1_seed/03_dir/10.sql', '2.sql'];
    expect(sorted(paths)).toEqual([
      '1_seed/03_dir/9.sql',
      '1_seed/03_dir/10.sql',
      '1_seed/05_a.sql',
      '1_seed/10_z.sql',
      '2.sql',
    ]);
  });

  it('counts only the digits 0-9 as a leading number: other characters that sort below them make a name', () => {
    expect(sorted(['2_a.sql', '--b.sql'])).toEqual(['--b.sql', '2_a.sql']);
  });

  it('breaks ties between equal numbers by plain string comparison', () => {
    expect(compareExecutionOrder('01_a.sql', '1_a.sql')).toBeLessThan(0);
    expect(compareExecutionOrder('1_a.sql', '01_a.sql')).toBeGreaterThan(0);
    expect(compareExecutionOrder('1_b.sql', '1_a.sql')).toBeGreaterThan(0);
    expect(compareExecutionOrder('1_a.sql', '1_a.sql')).toBe(0);
  });

  it('compares digit runs of any length exactly', () => {
    expect(compareExecutionOrder('123456789012345678902_b', '123456789012345678901_a')).toBeGreaterThan(0);
    expect(compareExecutionOrder('20240101120000_a', '9_b')).toBeGreaterThan(0);
    expect(compareExecutionOrder('000_a', '0_a')).toBeLessThan(0);
  });

  it('places unnumbered names by plain string comparison', () => {
    expect(sorted(['readme.sql', '10_x.sql', '-early.sql', '2_x.sql', 'Zed.sql'])).toEqual([
      '-early.sql',
      '2_x.sql',
      '10_x.sql',
      'Zed.sql',
      'readme.sql',
    ]);
  });

  it('is a total order: antisymmetric and transitive on awkward names', () => {
    const names = ['1', '01', '001', '1a', '1_a', '10', '9', 'a', '_a', '-a', '0', '00', '2/1', '2/01', '2', '02/a'];
    const sign = (a: string, b: string) => Math.sign(compareExecutionOrder(a, b));
    for (const a of names) {
      for (const b of names) {
        expect(sign(a, b) + sign(b, a)).toBe(0);
        if (a !== b) expect(sign(a, b)).not.toBe(0);
        for (const c of names) {
          if (sign(a, b) <= 0 && sign(b, c) <= 0) expect(sign(a, c)).toBeLessThanOrEqual(0);
        }
      }
    }
  });
});

describe('scanRepository', () => {
  it('returns files in execution order with POSIX relative paths', async () => {
    await writeFiles(root, {
      '10_finalize/1.sql': '',
      '2_seed/10_b.sql': '',
      '2_seed/9_a.sql': '',
      '2_seed/05_more/1.sql': '',
      '0_schema/tables.sql': '',
    });
    expect(await scanPaths()).toEqual([
      '0_schema/tables.sql',
      '2_seed/05_more/1.sql',
      '2_seed/9_a.sql',
      '2_seed/10_b.sql',
      '10_finalize/1.sql',
    ]);
  });

  it('reports size, mtime, absolute path and the sha256 of the raw bytes', async () => {
    const content = Buffer.from('insert into t values (1);\n-- é\n', 'utf8');
    await writeFiles(root, { '1_seed/users.sql': content });
    const { files, hashedFiles, root: scannedRoot } = await scanRepository({ root });
    const stats = await stat(join(root, '1_seed/users.sql'));
    expect(scannedRoot).toBe(root);
    expect(hashedFiles).toBe(1);
    expect(files).toEqual([
      {
        relativePath: '1_seed/users.sql',
        absolutePath: join(root, '1_seed', 'users.sql'),
        size: content.length,
        mtimeMs: stats.mtimeMs,
        hash: createHash('sha256').update(content).digest('hex'),
      },
    ]);
  });

  it('hashes files larger than its 1 MiB read, and files of exactly that size, whole', async () => {
    const big = Buffer.alloc((5 << 20) / 2 + 7, 'x');
    const exact = Buffer.alloc(1 << 20, 'y');
    await writeFiles(root, { 'a.sql': big, 'b.sql': exact, 'c.sql': '' });
    const { files } = await scanRepository({ root });
    const sha = (content: Buffer | string) => createHash('sha256').update(content).digest('hex');
    expect(files.map((file) => file.hash)).toEqual([sha(big), sha(exact), sha('')]);
  });

  it('takes only .sql files by default, skipping hidden ones', async () => {
    await writeFiles(root, { 'a.sql': '', 'notes.md': '', 'b.SQL.bak': '', '.hidden/c.sql': '', '.d.sql': '' });
    expect(await scanPaths()).toEqual(['a.sql']);
  });

  it('applies include globs, and exclude wins over include', async () => {
    await writeFiles(root, {
      '1/a.sql': '',
      '1/b.psql': '',
      '1/draft_c.sql': '',
      'archive/old.sql': '',
      'x.txt': '',
    });
    const include = ['**/*.sql', '**/*.psql'];
    expect(await scanPaths({ include })).toEqual(['1/a.sql', '1/b.psql', '1/draft_c.sql', 'archive/old.sql']);
    expect(await scanPaths({ include, exclude: ['**/draft_*', 'archive/**'] })).toEqual(['1/a.sql', '1/b.psql']);
  });

  it('returns an empty list for an empty repository', async () => {
    expect(await scanRepository({ root })).toEqual({ root, files: [], hashedFiles: 0 });
  });

  it('follows symbolic links to files and folders, outside the repository too', async () => {
    await writeFiles(base, { 'outside/shared/1.sql': 'select 1;', 'outside/single.sql': 'select 2;' });
    await writeFiles(root, { '1_seed/0_own.sql': '' });
    await symlink(join(base, 'outside/shared'), join(root, '1_seed/5_shared'));
    await symlink('../../outside/single.sql', join(root, '1_seed/9_single.sql'));
    const { files } = await scanRepository({ root });
    expect(files.map((file) => file.relativePath)).toEqual([
      '1_seed/0_own.sql',
      '1_seed/5_shared/1.sql',
      '1_seed/9_single.sql',
    ]);
    expect(files[2]!.hash).toBe(createHash('sha256').update('select 2;').digest('hex'));
  });

  it('follows a link to a sibling folder even when it is reached twice', async () => {
    await writeFiles(root, { '1_seed/a.sql': '' });
    await symlink('1_seed', join(root, '2_again'));
    expect(await scanPaths()).toEqual(['1_seed/a.sql', '2_again/a.sql']);
  });

  it('rejects a link back to the repository root as a loop', async () => {
    await writeFiles(root, { '1_seed/a.sql': '' });
    await symlink('..', join(root, '1_seed/up'));
    const error = await scanError();
    expect(error.code).toBe('SYMLINK_LOOP');
    expect(error.file).toBe('1_seed/up');
    expect(error.located).toBe('1_seed/up: symbolic link loop: points back to .');
  });

  it('rejects a link back to an ancestor folder, naming both', async () => {
    await writeFiles(root, { '1_seed/deeper/a.sql': '' });
    await symlink(join(root, '1_seed'), join(root, '1_seed/deeper/back'));
    const error = await scanError();
    expect(error.code).toBe('SYMLINK_LOOP');
    expect(error.located).toBe('1_seed/deeper/back: symbolic link loop: points back to 1_seed');
  });

  it('rejects a selected link that points to itself', async () => {
    await symlink('self.sql', join(root, 'self.sql'));
    const error = await scanError();
    expect(error.code).toBe('SYMLINK_LOOP');
    expect(error.located).toBe('self.sql: symbolic link loop: the link never resolves');
  });

  it('rejects a selected dangling link, naming its target', async () => {
    await writeFiles(root, { '1_seed/a.sql': '' });
    await symlink('gone.sql', join(root, '1_seed/b.sql'));
    const error = await scanError();
    expect(error.code).toBe('FILE_UNREADABLE');
    expect(error.located).toBe('1_seed/b.sql: dangling symbolic link: gone.sql does not exist');
    expect(error.hint).toBe('restore its target or remove the link');
  });

  it('rejects a dangling link where the patterns could select files beneath it: it may have been a folder', async () => {
    await writeFiles(root, { '1_seed/a.sql': '' });
    await symlink(join(base, 'gone'), join(root, '2_linked_seed'));
    const error = await scanError();
    expect(error.code).toBe('FILE_UNREADABLE');
    expect(error.file).toBe('2_linked_seed');
  });

  it('ignores dangling links and link loops the patterns do not select, such as an editor lock file', async () => {
    await writeFiles(root, { '1_seed/01_users.sql': '', 'docs/readme.md': '' });
    // Emacs marks a file being edited with a dangling link `.#name` pointing at user@host.pid.
    await symlink('someone@host.1234:1700000000', join(root, '1_seed/.#01_users.sql'));
    await symlink('self', join(root, '1_seed/.self'));
    await symlink('..', join(root, 'docs/up'));
    expect(await scanPaths({ include: ['[0-9]*/**/*.sql'] })).toEqual(['1_seed/01_users.sql']);
    // The default **/*.sql reaches docs/, but never a folder whose name starts with a dot.
    await rm(join(root, 'docs/up'));
    await symlink('..', join(root, '1_seed/.up'));
    expect(await scanPaths()).toEqual(['1_seed/01_users.sql']);
  });

  it('takes a link that could be a folder but points to a file only if the patterns select its name', async () => {
    await writeFiles(root, { '1_seed/a.sql': '', 'notes.txt': '' });
    await symlink('notes.txt', join(root, '2_seed'));
    expect(await scanPaths()).toEqual(['1_seed/a.sql']);
  });

  it('does not enter a selected link to a folder that no pattern reaches into, even one looping back', async () => {
    await writeFiles(root, { 'a.sql': '', '1_seed/b.sql': '' });
    await symlink('.', join(root, 'x.sql'));
    expect(await scanPaths({ include: ['*.sql'] })).toEqual(['a.sql']);
  });

  it('reports a link it cannot resolve for a reason other than a missing target as unreadable, not dangling', async () => {
    await symlink('x'.repeat(300), join(root, 'long.sql'));
    const error = await scanError();
    expect(error.code).toBe('FILE_UNREADABLE');
    expect(error.located).toBe('long.sql: cannot read link: ENAMETOOLONG');
  });

  it('does not enter a folder an exclude pattern covers, nor follow links in it', async () => {
    await writeFiles(root, { '1_seed/a.sql': '', 'vendor/lib/b.sql': '' });
    await symlink('..', join(root, 'vendor/lib/up'));
    await symlink('gone', join(root, 'vendor/c.sql'));
    expect(await scanPaths({ exclude: ['vendor/**'] })).toEqual(['1_seed/a.sql']);
    await rm(join(root, 'vendor/c.sql'));
    expect(await scanPaths({ exclude: ['**/lib/**'] })).toEqual(['1_seed/a.sql']);
  });

  it('names files in errors relative to shownFrom, as the SQL errors do', async () => {
    await writeFiles(root, { '1_seed/a.sql': '' });
    await symlink('..', join(root, '1_seed/up'));
    const loop = await scanError({ shownFrom: base });
    expect(loop.located).toBe('repo/1_seed/up: symbolic link loop: points back to repo');
    await rm(join(root, '1_seed/up'));
    execFileSync('mkfifo', [join(root, '1_seed/pipe.sql')]);
    const fifo = await scanError({ shownFrom: join(base, 'elsewhere') });
    expect(fifo.located).toBe('../repo/1_seed/pipe.sql: not a regular file');
  });

  it('reports a file it cannot read by its relative path', async () => {
    await writeFiles(root, { '1_seed/a.sql': '' });
    if (process.getuid?.() === 0) {
      // chmod 000 does not stop root; /proc/self/mem is a regular file whose first page cannot be read (EIO).
      await symlink('/proc/self/mem', join(root, '1_seed/secret.sql'));
    } else {
      await writeFiles(root, { '1_seed/secret.sql': 'select 1;' });
      await chmod(join(root, '1_seed/secret.sql'), 0o000);
    }
    const error = await scanError({ shownFrom: base });
    expect(error.code).toBe('FILE_UNREADABLE');
    expect(error.located).toMatch(/^repo\/1_seed\/secret\.sql: cannot read file: E[A-Z]+$/);
  });

  it('refuses a matching FIFO instead of blocking on it', async () => {
    execFileSync('mkfifo', [join(root, 'pipe.sql')]);
    const error = await scanError();
    expect(error.code).toBe('FILE_UNREADABLE');
    expect(error.located).toBe('pipe.sql: not a regular file');
  });

  it('reports a missing repository with a hint', async () => {
    const missing = join(base, 'nope');
    const error = await scanError({ root: missing });
    expect(error.code).toBe('REPOSITORY_NOT_FOUND');
    expect(error.message).toBe(`repository folder not found: ${missing}`);
    expect(error.hint).toContain('dbfast.toml');
  });

  it('reports a repository path that is a file', async () => {
    await writeFiles(base, { 'file.sql': '' });
    const error = await scanError({ root: join(base, 'file.sql') });
    expect(error.code).toBe('REPOSITORY_NOT_FOUND');
    expect(error.message).toContain('not a folder');
    expect(error.hint).toBe('set [repository] path in dbfast.toml to the folder that holds the numbered SQL folders');
  });

  it('reports a repository path it cannot stat as unreadable, not as missing', async () => {
    await symlink('loop', join(base, 'loop'));
    const error = await scanError({ root: join(base, 'loop') });
    expect(error.code).toBe('FILE_UNREADABLE');
    expect(error.message).toBe('cannot read folder: ELOOP');
  });
});

describe('scanRepository with a stat cache', () => {
  async function writeOldFiles(files: Record<string, string>): Promise<void> {
    await writeFiles(root, files);
    for (const path of Object.keys(files)) await setMtime(path, AN_HOUR_AGO_S);
  }

  it('reads no file when nothing changed, and leaves the cache alone', async () => {
    await writeOldFiles({ '1/a.sql': 'select 1;', '2/b.sql': 'select 2;' });
    const first = await scanRepository({ root, cachePath });
    const cacheText = await readFile(cachePath, 'utf8');
    const second = await scanRepository({ root, cachePath });
    expect(first.hashedFiles).toBe(2);
    expect(second.hashedFiles).toBe(0);
    expect(second.files).toEqual(first.files);
    expect(await readFile(cachePath, 'utf8')).toBe(cacheText);
  });

  it('writes the documented format, creating its folder, with no temporary file left', async () => {
    await writeOldFiles({ '1/a.sql': 'select 1;' });
    const before = Date.now();
    const { files } = await scanRepository({ root, cachePath });
    const cache = await readCache();
    const stats = await stat(join(root, '1/a.sql'));
    expect(cache.version).toBe(3);
    expect(cache.writtenAtMs).toBeGreaterThanOrEqual(before);
    expect(cache.entries).toEqual({
      '1/a.sql': { size: stats.size, mtimeMs: stats.mtimeMs, ctimeMs: stats.ctimeMs, ino: stats.ino, hash: files[0]!.hash },
    });
    expect(await readdir(join(base, 'state'))).toEqual(['scan-cache.json']);
  });

  it('re-hashes only the file whose content changed', async () => {
    await writeOldFiles({ '1/a.sql': 'select 1;', '2/b.sql': 'select 2;' });
    await scanRepository({ root, cachePath });
    await writeFile(join(root, '2/b.sql'), 'select 22;');
    await setMtime('2/b.sql', AN_HOUR_AGO_S + 60);
    const { files, hashedFiles } = await scanRepository({ root, cachePath });
    expect(hashedFiles).toBe(1);
    expect(files[1]!.hash).toBe(createHash('sha256').update('select 22;').digest('hex'));
    expect((await scanRepository({ root, cachePath })).hashedFiles).toBe(0);
  });

  it('re-hashes a file replaced by another of the same size and mtime', async () => {
    await writeOldFiles({ '1/a.sql': 'select 1;', 'replacement.tmp': 'select 9;' });
    await scanRepository({ root, cachePath });
    // Editors often save by writing a new file and renaming it over the old one: only the inode tells.
    await rename(join(root, 'replacement.tmp'), join(root, '1/a.sql'));
    const { files, hashedFiles } = await scanRepository({ root, cachePath });
    expect(hashedFiles).toBe(1);
    expect(files[0]!.hash).toBe(createHash('sha256').update('select 9;').digest('hex'));
  });

  it('re-hashes a touched file and finds the same hash', async () => {
    await writeOldFiles({ '1/a.sql': 'select 1;' });
    const first = await scanRepository({ root, cachePath });
    await setMtime('1/a.sql', AN_HOUR_AGO_S + 60);
    const second = await scanRepository({ root, cachePath });
    expect(second.hashedFiles).toBe(1);
    expect(second.files[0]!.hash).toBe(first.files[0]!.hash);
  });

  it('catches a same-size edit with a restored mtime when the entry is racily clean', async () => {
    await writeFiles(root, { '1/a.sql': 'select 1;' });
    const recently = Math.floor(Date.now() / 1000);
    await setMtime('1/a.sql', recently);
    await scanRepository({ root, cachePath });
    const before = await stat(join(root, '1/a.sql'));
    await writeFile(join(root, '1/a.sql'), 'select 9;');
    await setMtime('1/a.sql', recently);
    const after = await stat(join(root, '1/a.sql'));
    expect([after.size, after.mtimeMs, after.ino]).toEqual([before.size, before.mtimeMs, before.ino]);

    const { files, hashedFiles } = await scanRepository({ root, cachePath });
    expect(hashedFiles).toBe(1);
    expect(files[0]!.hash).toBe(createHash('sha256').update('select 9;').digest('hex'));
  });

  it('re-hashes a same-size edit whose old mtime was restored: the ctime tells', async () => {
    await writeOldFiles({ '1/a.sql': 'select 1;' });
    const first = await scanRepository({ root, cachePath });
    const before = await stat(join(root, '1/a.sql'));
    await writeFile(join(root, '1/a.sql'), 'select 9;');
    await setMtime('1/a.sql', AN_HOUR_AGO_S);
    const after = await stat(join(root, '1/a.sql'));
    expect([after.size, after.mtimeMs, after.ino]).toEqual([before.size, before.mtimeMs, before.ino]);
    expect(after.ctimeMs).not.toBe(before.ctimeMs);

    const second = await scanRepository({ root, cachePath });
    expect(second.hashedFiles).toBe(1);
    expect(second.files[0]!.hash).not.toBe(first.files[0]!.hash);
    expect(second.files[0]!.hash).toBe(createHash('sha256').update('select 9;').digest('hex'));
  });

  it('re-hashes an entry whose mtime falls within two seconds of the cache write', async () => {
    await writeOldFiles({ '1/a.sql': 'select 1;' });
    await scanRepository({ root, cachePath });
    const cache = await readCache();
    await writeCache({ ...cache, writtenAtMs: AN_HOUR_AGO_S * 1000 + 1999 });
    expect((await scanRepository({ root, cachePath })).hashedFiles).toBe(1);
    await writeCache({ ...cache, writtenAtMs: AN_HOUR_AGO_S * 1000 + 2000 });
    expect((await scanRepository({ root, cachePath })).hashedFiles).toBe(1);
    await writeCache({ ...cache, writtenAtMs: AN_HOUR_AGO_S * 1000 + 2001 });
    expect((await scanRepository({ root, cachePath })).hashedFiles).toBe(0);
  });

  it('ignores a corrupt or foreign cache and rebuilds it', async () => {
    await writeOldFiles({ '1/a.sql': 'select 1;' });
    const foreign = ['{ not json', 'null', 'dbfast-scan-cache 2\t0', 'dbfast-scan-cache 3\tsoon', '', 'dbfast-scan-cache 3'];
    for (const content of foreign) {
      await mkdir(join(base, 'state'), { recursive: true });
      await writeFile(cachePath, content);
      expect((await scanRepository({ root, cachePath })).hashedFiles).toBe(1);
      expect((await readCache()).version).toBe(3);
    }
  });

  it('never trusts a malformed entry', async () => {
    await writeOldFiles({ '1/a.sql': 'select 1;' });
    await scanRepository({ root, cachePath });
    const cache = await readCache();
    const entry = cache.entries['1/a.sql']!;
    await writeCache({ ...cache, entries: { '1/a.sql': { ...entry, hash: 'not-a-sha256' } } });
    const { files, hashedFiles } = await scanRepository({ root, cachePath });
    expect(hashedFiles).toBe(1);
    expect(files[0]!.hash).toBe(createHash('sha256').update('select 1;').digest('hex'));
  });

  it('lets no line with too few fields displace the good entry of the same path', async () => {
    await writeOldFiles({ '1/a.sql': 'select 1;' });
    await scanRepository({ root, cachePath });
    await writeFile(cachePath, `${await readFile(cachePath, 'utf8')}\nx\t1/a.sql\n1/a.sql`);
    expect((await scanRepository({ root, cachePath })).hashedFiles).toBe(0);
  });

  it('stores no entry for a path with a line break', async () => {
    await writeOldFiles({ 'a.sql': 'select 1;', 'b\nc.sql': 'select 2;' });
    await scanRepository({ root, cachePath });
    expect(Object.keys((await readCache()).entries)).toEqual(['a.sql']);
  });

  it('closes every file it hashes', async () => {
    await writeOldFiles(Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`${i}.sql`, `select ${i};`])));
    const before = (await readdir('/proc/self/fd')).length;
    await scanRepository({ root, cachePath });
    expect((await readdir('/proc/self/fd')).length).toBe(before);
  });

  it('re-hashes every file when the header is of another version or has no write time, even with good entries', async () => {
    await writeOldFiles({ '1/a.sql': 'select 1;' });
    await scanRepository({ root, cachePath });
    const cache = await readCache();
    const good = await readFile(cachePath, 'utf8');
    for (const header of [`dbfast-scan-cache 2\t${cache.writtenAtMs}`, 'dbfast-scan-cache 3\tsoon']) {
      await writeFile(cachePath, good.replace(/^[^\n]*/, header));
      expect((await scanRepository({ root, cachePath })).hashedFiles, header).toBe(1);
    }
  });

  it('trusts only a hash of exactly 64 hex digits', async () => {
    await writeOldFiles({ '1/a.sql': 'select 1;' });
    await scanRepository({ root, cachePath });
    const cache = await readCache();
    const entry = cache.entries['1/a.sql']!;
    for (const hash of [`${entry.hash}0`, `0${entry.hash}`]) {
      await writeCache({ ...cache, entries: { '1/a.sql': { ...entry, hash } } });
      expect((await scanRepository({ root, cachePath })).hashedFiles, hash).toBe(1);
    }
  });

  it('drops entries of deleted files', async () => {
    await writeOldFiles({ '1/a.sql': '', '1/b.sql': '' });
    await scanRepository({ root, cachePath });
    await rm(join(root, '1/b.sql'));
    expect((await scanRepository({ root, cachePath })).hashedFiles).toBe(0);
    expect(Object.keys((await readCache()).entries)).toEqual(['1/a.sql']);
  });

  it('still scans when the cache cannot be written', async () => {
    await writeOldFiles({ '1/a.sql': '' });
    await writeFiles(base, { blocker: '' });
    const { files } = await scanRepository({ root, cachePath: join(base, 'blocker', 'scan-cache.json') });
    expect(files).toHaveLength(1);
  });
});

describe('hashExistingFiles', () => {
  const sha256 = (content: string) => createHash('sha256').update(content).digest('hex');
  const found = (...paths: string[]) => paths.map((relativePath) => ({ relativePath, absolutePath: join(root, relativePath) }));

  it('hashes the given files in the given order, leaving out those that do not exist', async () => {
    await writeFiles(root, { 'b.inc': 'bee', 'a.inc': 'a' });
    const files = await hashExistingFiles(found('b.inc', 'gone.inc', 'a.inc', 'b.inc/under-a-file.inc'), cachePath);
    expect(files.map(({ relativePath, size, hash }) => [relativePath, size, hash])).toEqual([
      ['b.inc', 3, sha256('bee')],
      ['a.inc', 1, sha256('a')],
    ]);
  });

  it('keeps a stat cache of its own: unchanged files are not read again, and the cache is not rewritten', async () => {
    await writeFiles(root, { 'a.inc': 'select 1;' });
    await setMtime('a.inc', AN_HOUR_AGO_S);
    await hashExistingFiles(found('a.inc'), cachePath);
    const cacheText = await readFile(cachePath, 'utf8');
    // Nothing changed: the cached hash is trusted and the cache left as it is.
    expect((await hashExistingFiles(found('a.inc'), cachePath))[0]!.hash).toBe(sha256('select 1;'));
    expect(await readFile(cachePath, 'utf8')).toBe(cacheText);
    // A same-size edit with its mtime put back still changes the ctime: read again.
    await writeFile(join(root, 'a.inc'), 'select 9;');
    await setMtime('a.inc', AN_HOUR_AGO_S);
    expect((await hashExistingFiles(found('a.inc'), cachePath))[0]!.hash).toBe(sha256('select 9;'));
  });

  it('refuses a path that is not a regular file', async () => {
    await mkdir(join(root, 'folder.inc'));
    await expect(hashExistingFiles(found('folder.inc'), cachePath)).rejects.toMatchObject({
      code: 'FILE_UNREADABLE',
      message: 'not a regular file',
      file: 'folder.inc',
    });
  });

  it('leaves out only files that do not exist: one it cannot stat is an error', async () => {
    await symlink('loop.inc', join(root, 'loop.inc'));
    await expect(hashExistingFiles(found('loop.inc'), cachePath)).rejects.toMatchObject({
      code: 'FILE_UNREADABLE',
      message: 'cannot read file: ELOOP',
      file: 'loop.inc',
    });
  });
});
