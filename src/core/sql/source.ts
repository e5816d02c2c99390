/**
 * A SQL file read as a stream of text: fixed-size chunks read synchronously, decoded in the file's
 * encoding and hashed as they go, so that memory stays bounded whatever the file's size and the
 * hash is of exactly the bytes that were executed.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { DbfastError } from '../errors.js';
import { decoderLabel } from './encoding.js';
import { advance, type Location, START } from './position.js';

/**
 * Small enough that each piece of text is an ordinary young-generation object: 1 MiB pieces went
 * to V8's large-object space, which only a full collection frees, and a 300 MB load peaked at
 * 180 MB resident instead of ~60 MB.
 */
const CHUNK_BYTES = 1 << 15;

export class SourceReader {
  private fd: number | null;
  private readonly hash: Hash = createHash('sha256');
  private readonly buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  /** The first chunk, read ahead so the encoding can be chosen before anything is decoded. */
  private first: Buffer | null = null;
  private decode: ((bytes: Buffer, last: boolean) => string) | null = null;
  private started = false;
  private ended = false;
  encoding = 'UTF8';

  private constructor(
    readonly absolutePath: string,
    readonly displayPath: string,
    fd: number,
  ) {
    this.fd = fd;
  }

  static open(absolutePath: string, displayPath: string): SourceReader {
    try {
      return new SourceReader(absolutePath, displayPath, openSync(absolutePath, 'r'));
    } catch (error) {
      throw unreadable(displayPath, error);
    }
  }

  /** The file's first bytes (up to one chunk), without consuming them. */
  peek(): Buffer {
    this.first ??= Buffer.from(this.readChunk());
    return this.first;
  }

  /** Chooses how the bytes are decoded; only before the first call to next(). */
  setEncoding(canonical: string): void {
    this.encoding = canonical;
    this.decode = null;
  }

  /** The next piece of text, or null after the end of the file. */
  next(): string | null {
    if (this.ended) return null;
    const bytes = this.first ?? this.readChunk();
    this.first = null;
    const last = bytes.length === 0;
    this.decode ??= decoderFor(this.encoding);
    let text: string;
    try {
      text = this.decode(bytes, last);
    } catch (error) {
      let within = (error as { at?: Location }).at ?? START;
      // The byte order mark is dropped from the text, so it takes no column on line 1.
      if (!this.started && within.line === 1 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
        within = { line: 1, column: within.column - 1 };
      }
      throw new InvalidBytes(this.displayPath, this.encoding, within);
    }
    if (!this.started) {
      this.started = true;
      // A byte order mark is not SQL: psql's lexer would choke on it, so it is dropped.
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (last) {
      this.ended = true;
      this.close();
    }
    return text;
  }

  /** sha256 (hex) of the bytes read so far: of the whole file once next() returned null. */
  digest(): string {
    return this.hash.copy().digest('hex');
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private readChunk(): Buffer {
    if (this.fd === null) return Buffer.alloc(0);
    let read: number;
    try {
      read = readSync(this.fd, this.buffer, 0, CHUNK_BYTES, null);
    } catch (error) {
      this.close();
      throw unreadable(this.displayPath, error);
    }
    // A view of the one read buffer: decoded before the next read.
    const bytes = this.buffer.subarray(0, read);
    this.hash.update(bytes);
    return bytes;
  }
}

/**
 * Invalid bytes in the piece of text next() was about to hand out, located within that piece: the
 * reader does not track lines (its reader, the lexer, already does), so `at` places it in the file.
 */
export class InvalidBytes extends Error {
  constructor(
    private readonly file: string,
    private readonly encoding: string,
    private readonly within: Location,
  ) {
    super(`invalid ${encoding} bytes`);
  }

  /** The error, for a piece that starts at `start` in the file. */
  at(start: Location): DbfastError {
    const { within } = this;
    const location =
      within.line === 1 ? { line: start.line, column: start.column + within.column - 1 } : { line: start.line + within.line - 1, column: within.column };
    return new DbfastError('FILE_ENCODING', `invalid ${this.encoding === 'UTF8' ? 'UTF-8' : this.encoding} byte sequence`, {
      file: this.file,
      ...location,
      hint:
        this.encoding === 'UTF8'
          ? "dbfast reads SQL files as UTF-8 unless the file starts with SET client_encoding = '...'; or convert it (iconv -f LATIN1 -t UTF-8)"
          : undefined,
    });
  }
}

function unreadable(displayPath: string, error: unknown): DbfastError {
  const { code, message } = error as NodeJS.ErrnoException;
  return new DbfastError('FILE_UNREADABLE', `cannot read file: ${code ?? message}`, { file: displayPath, cause: error });
}

/** A chunk decoder keeping a sequence split across chunks for the next call; throws `{ at }` on invalid bytes. */
function decoderFor(canonical: string): (bytes: Buffer, last: boolean) => string {
  const label = decoderLabel(canonical);
  // WHATWG's "latin1" is Windows-1252; PostgreSQL's LATIN1 is ISO 8859-1, byte for character.
  if (label === 'latin1') return (bytes) => bytes.toString('latin1');
  const decoder = new TextDecoder(label, { fatal: true, ignoreBOM: true });
  const lenient = new TextDecoder(label, { ignoreBOM: true });
  let pending: Buffer = Buffer.alloc(0);
  return (bytes, last) => {
    const input = pending.length ? Buffer.concat([pending, bytes]) : bytes;
    try {
      return decoder.decode(bytes, { stream: !last });
    } catch {
      throw { at: invalidPosition(input, lenient) };
    } finally {
      pending = label === 'utf-8' ? Buffer.from(incompleteUtf8Tail(input)) : Buffer.alloc(0);
    }
  };
}

/** The bytes at the end of `bytes` that begin a UTF-8 sequence not yet complete. */
function incompleteUtf8Tail(bytes: Buffer): Buffer {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const byte = bytes[bytes.length - back]!;
    if ((byte & 0xc0) === 0x80) continue;
    const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return length > back ? bytes.subarray(bytes.length - back) : Buffer.alloc(0);
  }
  return Buffer.alloc(0);
}

/** Where the first invalid sequence starts, relative to `bytes`: the first replacement character a lenient decoder makes. */
function invalidPosition(bytes: Buffer, lenient: TextDecoder): Location {
  const text = lenient.decode(bytes);
  const at = text.indexOf('\ufffd');
  return advance(START, text.slice(0, at === -1 ? text.length : at));
}
