/**
 * SourceReader on its own: a file read in 32 KiB chunks, decoded in its encoding and hashed as it
 * goes. The executor tests read through it end to end.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DbfastError } from '../../../src/core/errors.js';
import { InvalidBytes, SourceReader } from '../../../src/core/sql/source.js';
import { tempRepo } from '../../helpers/repo.js';

const CHUNK = 1 << 15;

async function reader(content: string | Buffer, encoding?: string): Promise<SourceReader> {
  const root = await tempRepo({ 'f.sql': content });
  const source = SourceReader.open(join(root, 'f.sql'), 'db/f.sql');
  if (encoding) source.setEncoding(encoding);
  return source;
}

/** Every piece next() hands out, up to the null that ends the file. */
function pieces(source: SourceReader): string[] {
  const result: string[] = [];
  for (let piece = source.next(); piece !== null; piece = source.next()) result.push(piece);
  expect(source.next()).toBeNull();
  return result;
}

/** The located error for invalid bytes in the piece starting at `start`. */
function invalidBytesAt(source: SourceReader, start = { line: 1, column: 1 }): DbfastError {
  try {
    pieces(source);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidBytes);
    return (error as InvalidBytes).at(start);
  }
  throw new Error('expected invalid bytes');
}

describe('SourceReader', () => {
  it('hands out the whole text in chunk-sized pieces, and the sha256 of every byte', async () => {
    const text = `${'é'.repeat(CHUNK)}\nSELECT 1;`;
    const source = await reader(text);
    const read = pieces(source);
    expect(read.join('')).toBe(text);
    expect(read.filter((piece) => piece !== '').length).toBe(3);
    expect(Math.max(...read.map((piece) => Buffer.byteLength(piece)))).toBe(CHUNK);
    expect(source.digest()).toBe(createHash('sha256').update(text).digest('hex'));
  });

  it('closes the file once it has handed out the end', async () => {
    const source = await reader('SELECT 1;');
    const before = (await readdir('/proc/self/fd')).length;
    pieces(source);
    expect((await readdir('/proc/self/fd')).length).toBe(before - 1);
  });

  it('gives an empty file no text', async () => {
    const source = await reader('');
    expect(pieces(source).join('')).toBe('');
    expect(source.digest()).toBe(createHash('sha256').update('').digest('hex'));
  });

  it('decodes characters whose bytes straddle two chunks whole', async () => {
    for (const character of ['é', '日', '🐘']) {
      const text = `${'a'.repeat(CHUNK - 1)}${character}${'b'.repeat(CHUNK)}${character}`;
      expect((await pieces(await reader(text))).join(''), character).toBe(text);
    }
  });

  it('drops a byte order mark at the start of the file only', async () => {
    expect(pieces(await reader('\ufeffSELECT 1; -- \ufeff')).join('')).toBe('SELECT 1; -- \ufeff');
  });

  it('reads LATIN1 byte for character, C1 controls included (not as windows-1252)', async () => {
    expect(pieces(await reader(Buffer.from([0x61, 0x80, 0x9f, 0xe9, 0xff]), 'LATIN1')).join('')).toBe('a\u0080\u009féÿ');
  });

  it('peeks at the first bytes without consuming them, so the encoding can still be chosen', async () => {
    const source = await reader(Buffer.from("SET client_encoding = 'LATIN1';\nSELECT 'caf\xe9';\n", 'latin1'));
    expect(source.peek().toString('latin1')).toBe("SET client_encoding = 'LATIN1';\nSELECT 'caf\xe9';\n");
    expect(source.peek()).toBe(source.peek());
    source.setEncoding('LATIN1');
    expect(source.encoding).toBe('LATIN1');
    expect(pieces(source).join('')).toBe("SET client_encoding = 'LATIN1';\nSELECT 'café';\n");
  });

  it('locates invalid UTF-8 by line and character, with a hint', async () => {
    const error = invalidBytesAt(await reader(Buffer.concat([Buffer.from('SELECT 1;\nSELECT 🐘 '), Buffer.from([0xff])])));
    expect(error).toMatchObject({ code: 'FILE_ENCODING', file: 'db/f.sql', line: 2, column: 10, message: 'invalid UTF-8 byte sequence' });
    expect(error.hint).toContain('unless the file starts with SET client_encoding');
  });

  it('places invalid bytes relative to the piece they are in', async () => {
    const firstLine = invalidBytesAt(await reader(Buffer.from([0x61, 0x62, 0xff])), { line: 3, column: 5 });
    expect(firstLine).toMatchObject({ line: 3, column: 7 });
    const laterLine = invalidBytesAt(await reader(Buffer.from([0x61, 0x0a, 0x62, 0xff])), { line: 3, column: 5 });
    expect(laterLine).toMatchObject({ line: 4, column: 2 });
  });

  it('counts the characters of a chunk that starts with the end of a split character', async () => {
    // The first piece ends before the split é; the second starts with it, then b and the invalid byte.
    const bytes = Buffer.concat([Buffer.from(`${'a'.repeat(CHUNK - 1)}éb`), Buffer.from([0xff])]);
    const source = await reader(bytes);
    expect(source.next()).toBe('a'.repeat(CHUNK - 1));
    expect(invalidBytesAt(source, { line: 1, column: CHUNK })).toMatchObject({ line: 1, column: CHUNK + 2 });
  });

  it('does not count a dropped byte order mark as a column', async () => {
    const error = invalidBytesAt(await reader(Buffer.from([0xef, 0xbb, 0xbf, 0x61, 0xff])));
    expect(error).toMatchObject({ line: 1, column: 2 });
  });

  it('shifts the column only for a real byte order mark at the start of the file', async () => {
    // Bytes that merely look like the start of one are not a byte order mark.
    for (const [bytes, column] of [
      [[0xef, 0xbb, 0x41], 1],
      [[0x61, 0xff, 0xbf], 2],
      [[0x61, 0xbb, 0xbf], 2],
      [[0xef, 0x61, 0xbf], 1],
    ] as const) {
      expect(invalidBytesAt(await reader(Buffer.from(bytes))), bytes.join()).toMatchObject({ line: 1, column });
    }
    // After a byte order mark, invalid bytes on a later line keep their column.
    expect(invalidBytesAt(await reader(Buffer.from([0xef, 0xbb, 0xbf, 0x61, 0x0a, 0xff])))).toMatchObject({ line: 2, column: 1 });
  });

  it('keeps a U+FEFF that starts a later chunk as text, and counts its column', async () => {
    const text = `${'a'.repeat(CHUNK)}\ufeffb`;
    expect(pieces(await reader(text)).join('')).toBe(text);
    const source = await reader(Buffer.concat([Buffer.from(text), Buffer.from([0xff])]));
    expect(source.next()).toBe('a'.repeat(CHUNK));
    expect(invalidBytesAt(source, { line: 1, column: CHUNK + 1 })).toMatchObject({ line: 1, column: CHUNK + 3 });
  });

  it('locates invalid bytes after any 2, 3 or 4 byte character split across chunks', async () => {
    for (const character of ['é', '日', '🐘']) {
      const size = Buffer.byteLength(character);
      for (let split = 1; split < size; split++) {
        const bytes = Buffer.concat([Buffer.from(`${'a'.repeat(CHUNK - split)}${character}b`), Buffer.from([0xff])]);
        const source = await reader(bytes);
        expect(source.next()).toBe('a'.repeat(CHUNK - split));
        expect(invalidBytesAt(source, { line: 1, column: 10 }), `${character} ${split}`).toMatchObject({ line: 1, column: 12 });
      }
    }
  });

  it('names the encoding of other invalid bytes, without the UTF-8 hint', async () => {
    const error = invalidBytesAt(await reader(Buffer.from([0x61, 0x0a, 0xff, 0x20]), 'EUCJP'));
    expect(error).toMatchObject({ line: 2, column: 1, message: 'invalid EUCJP byte sequence', hint: undefined });
  });

  it('reports a file it cannot open or read', async () => {
    const root = await tempRepo({});
    expect(() => SourceReader.open(join(root, 'missing.sql'), 'missing.sql')).toThrow(
      expect.objectContaining({ code: 'FILE_UNREADABLE', file: 'missing.sql', message: 'cannot read file: ENOENT' }),
    );
    await mkdir(join(root, 'folder.sql'));
    const folder = SourceReader.open(join(root, 'folder.sql'), 'folder.sql');
    expect(() => folder.next()).toThrow(expect.objectContaining({ code: 'FILE_UNREADABLE', message: 'cannot read file: EISDIR' }));
    folder.close();
  });
});
