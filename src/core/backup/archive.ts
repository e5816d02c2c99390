/**
 * pg_dump archives: writing one, and reading one whole. `pg_restore --list` reads only the table
 * of contents and passes a truncated or corrupted archive; reading every data block (as SQL, whose
 * COPY rows are counted on the way) fails on both when the archive is compressed, and the SHA-256
 * of the bytes catches what decompression cannot.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DbfastError } from '../errors.js';
import { type Program, runTool, type ToolConnection } from '../tools.js';
import type { BackupFormat, ObjectCounts, TableRows } from './store.js';

export interface DumpOptions {
  format: BackupFormat;
  /** Parallel jobs, directory format only. */
  jobs?: number;
  /** pg_dump's process id, once it runs. */
  onStart?: (pid: number) => void;
  /** Leave out owners and GRANTs (a template's roles need not exist where it is deployed). */
  portable?: boolean;
}

/** Runs pg_dump into `path`; zstd where pg_dump has it (16+), else gzip. Returns the compression used. */
export async function dumpDatabase(pgDump: Program, connection: ToolConnection, path: string, options: DumpOptions): Promise<string> {
  const compression = pgDump.major >= 16 ? 'zstd' : 'gzip';
  const args = [
    `--format=${options.format === 'directory' ? 'directory' : 'custom'}`,
    `--file=${path}`,
    ...(options.format === 'directory' && options.jobs && options.jobs > 1 ? [`--jobs=${options.jobs}`] : []),
    ...(options.portable ? ['--no-owner', '--no-privileges'] : []),
  ];
  const dump = (method: string) =>
    runTool(pgDump, [...args, ...(pgDump.major >= 16 ? [`--compress=${method}`] : [])], { connection, onStart: options.onStart });
  try {
    await dump(compression);
    return compression;
  } catch (error) {
    // A pg_dump built without zstd says so before writing anything.
    if (compression !== 'zstd' || !/does not support compression/.test((error as Error).message)) throw error;
    await dump('gzip');
    return 'gzip';
  }
}

export interface ArchiveContents {
  /** Entries in the table of contents. */
  objects: number;
  counts: ObjectCounts;
  rows: TableRows[];
}

/**
 * Reads the whole archive: its table of contents, then every data block through pg_restore's SQL
 * output, counting the rows of each table's COPY. A truncated or corrupted archive is a
 * BACKUP_CORRUPT error.
 */
export async function readArchive(pgRestore: Program, path: string): Promise<ArchiveContents> {
  const corrupt = (error: unknown): never => {
    // Only pg_restore's own failure to read says something of the archive; not starting, or being stopped, does not.
    if (!(error instanceof DbfastError && error.message.startsWith(`${pgRestore.name} failed:`))) throw error;
    throw new DbfastError('BACKUP_CORRUPT', `${path} cannot be read whole: ${(error as Error).message}`, {
      hint: 'the archive is truncated or corrupted: do not restore it; take a new backup',
      cause: error,
    });
  };
  const rowCounter = new CopyRowCounter();
  const [toc] = await Promise.all([
    runTool(pgRestore, ['--list', path]).catch(corrupt),
    runTool(pgRestore, ['--file=-', path], { onStdout: (chunk) => rowCounter.push(chunk) }).catch(corrupt),
  ]);
  return { ...summarizeToc(toc.stdout), rows: rowCounter.finish() };
}

/** pg_restore --list's kinds (the DESC column) that the restored database is checked for. */
const COUNTED_KINDS: Record<string, keyof ObjectCounts> = {
  TABLE: 'tables',
  'FOREIGN TABLE': 'tables',
  VIEW: 'views',
  'MATERIALIZED VIEW': 'materializedViews',
  SEQUENCE: 'sequences',
  FUNCTION: 'routines',
  PROCEDURE: 'routines',
  AGGREGATE: 'routines',
};

/** Kinds whose name starts like a counted kind, longest first, so `TABLE DATA` is not taken for `TABLE`. */
const KINDS_BY_LENGTH = [...Object.keys(COUNTED_KINDS), 'TABLE DATA', 'TABLE ATTACH', 'MATERIALIZED VIEW DATA', 'SEQUENCE SET', 'SEQUENCE OWNED BY'].sort(
  (a, b) => b.length - a.length,
);

/** Counts a `pg_restore --list` listing: `ID; catalog-oid object-oid DESC schema name owner` per entry. */
export function summarizeToc(listing: string): Omit<ArchiveContents, 'rows'> {
  const counts: ObjectCounts = { tables: 0, views: 0, materializedViews: 0, sequences: 0, routines: 0 };
  let objects = 0;
  for (const line of listing.split('\n')) {
    const entry = /^\d+; \d+ \d+ (.*)$/.exec(line);
    if (!entry) continue;
    objects++;
    const kind = KINDS_BY_LENGTH.find((name) => entry[1]!.startsWith(`${name} `));
    const counted = kind && COUNTED_KINDS[kind];
    if (counted) counts[counted]++;
  }
  return { objects, counts };
}

const NEWLINE = 0x0a;
const COPY_PREFIX = 'COPY ';
const COPY_SUFFIX = ' FROM stdin;';
const DATA_COMMENT = '-- Data for Name: ';
const DATA_TYPE = '; Type: TABLE DATA;';

/**
 * Counts the rows of each `COPY schema.table (...) FROM stdin;` block in pg_restore's SQL output,
 * after its `-- Data for Name: ...; Type: TABLE DATA; ...` comment. pg_dump writes COPY text
 * format, where a row is exactly one line and `\.` ends the data.
 */
export class CopyRowCounter {
  private readonly counts: TableRows[] = [];
  private current: TableRows | null = null;
  /** pg_restore announced a table's data: the next COPY line is it (a COPY line inside a function body is not). */
  private announced = false;
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    const buffer = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let start = 0;
    for (let end = buffer.indexOf(NEWLINE, start); end !== -1; end = buffer.indexOf(NEWLINE, start)) {
      this.line(buffer, start, end);
      start = end + 1;
    }
    this.pending = buffer.subarray(start);
  }

  finish(): TableRows[] {
    if (this.current) throw new DbfastError('BACKUP_CORRUPT', `the data of ${this.current.schema}.${this.current.table} ends without its \\. line`);
    return this.counts;
  }

  private line(buffer: Buffer, start: number, end: number): void {
    if (this.current) {
      if (end - start === 2 && buffer[start] === 0x5c && buffer[start + 1] === 0x2e) this.current = null;
      else this.current.rows++;
      return;
    }
    const first = buffer[start];
    if (first === 0x2d /* - */) {
      const text = buffer.toString('utf8', start, end);
      if (text.startsWith(DATA_COMMENT) && text.includes(DATA_TYPE)) this.announced = true;
      return;
    }
    if (first !== 0x43 /* C */ || !this.announced) return;
    const text = buffer.toString('utf8', start, end);
    if (!text.startsWith(COPY_PREFIX) || !text.endsWith(COPY_SUFFIX)) return;
    this.announced = false;
    const name = parseQualifiedName(text, COPY_PREFIX.length);
    if (!name) return;
    this.current = { ...name, rows: 0 };
    this.counts.push(this.current);
  }
}

/** `schema.table` as pg_dump writes it (each part double-quoted when needed) at `at`. */
export function parseQualifiedName(text: string, at: number): { schema: string; table: string } | null {
  const parts: string[] = [];
  let position = at;
  while (parts.length < 2) {
    let part = '';
    if (text[position] === '"') {
      position++;
      for (;;) {
        const close = text.indexOf('"', position);
        if (close === -1) return null;
        part += text.slice(position, close);
        position = close + 1;
        if (text[position] !== '"') break;
        part += '"';
        position++;
      }
    } else {
      const match = /^[^."\s]+/.exec(text.slice(position));
      if (!match) return null;
      part = match[0];
      position += part.length;
    }
    parts.push(part);
    if (parts.length === 1 && text[position++] !== '.') return null;
  }
  return { schema: parts[0]!, table: parts[1]! };
}

/** SHA-256 and size of an archive: its bytes, or for a directory every file's name and bytes in name order. */
export async function checksum(path: string, format: BackupFormat): Promise<{ sha256: string; sizeBytes: number }> {
  const hash = createHash('sha256');
  const files = format === 'directory' ? (await readdir(path)).sort().map((name) => join(path, name)) : [path];
  let sizeBytes = 0;
  for (const file of files) {
    if (format === 'directory') hash.update(`${file.slice(path.length + 1)}\0`);
    sizeBytes += (await stat(file)).size;
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  }
  return { sha256: hash.digest('hex'), sizeBytes };
}
