import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { DbfastError } from '../errors.js';
import { type LineIndex, lineIndex } from './position.js';

/** A SQL file's text, as the lexer and error messages see it. */
export interface Source {
  absolutePath: string;
  /** Path shown to users: relative to the repository when inside it. */
  displayPath: string;
  text: string;
  lines: LineIndex;
  /** sha256 hex of the bytes read (BOM included): what the build ran, for the freshness check. */
  hash: string;
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Reads a file as UTF-8 (a BOM is dropped, as psql does); invalid bytes are an error at their position. */
export async function readSource(absolutePath: string, displayPath: string): Promise<Source> {
  const bytes = await readFile(absolutePath).catch((error: NodeJS.ErrnoException) => {
    throw new DbfastError('FILE_UNREADABLE', `cannot read file: ${error.code ?? error.message}`, {
      file: displayPath,
      cause: error,
    });
  });
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    const { line, column } = invalidUtf8Position(bytes);
    throw new DbfastError('FILE_ENCODING', 'invalid UTF-8 byte sequence', {
      file: displayPath,
      line,
      column,
      hint: 'dbfast reads SQL files as UTF-8; convert the file (iconv -f LATIN1 -t UTF-8)',
    });
  }
  return { absolutePath, displayPath, text, lines: lineIndex(text), hash: createHash('sha256').update(bytes).digest('hex') };
}

function invalidUtf8Position(bytes: Uint8Array): { line: number; column: number } {
  let line = 1;
  let column = 1;
  for (let i = 0; i < bytes.length; ) {
    const byte = bytes[i]!;
    const length = byte < 0x80 ? 1 : byte >= 0xc2 && byte < 0xe0 ? 2 : byte >= 0xe0 && byte < 0xf0 ? 3 : byte >= 0xf0 && byte < 0xf5 ? 4 : 0;
    const valid =
      length > 0 &&
      i + length <= bytes.length &&
      bytes.subarray(i + 1, i + length).every((b) => (b & 0xc0) === 0x80) &&
      decodes(bytes.subarray(i, i + length));
    if (!valid) return { line, column };
    if (byte === 0x0a) {
      line++;
      column = 1;
    } else {
      column++;
    }
    i += length;
  }
  return { line, column };
}

function decodes(sequence: Uint8Array): boolean {
  try {
    decoder.decode(sequence);
    return true;
  } catch {
    return false;
  }
}
