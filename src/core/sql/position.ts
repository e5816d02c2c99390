/** 1-based line and column, columns counted in characters (code points) as editors do. */
export interface Location {
  line: number;
  column: number;
}

export const START: Location = { line: 1, column: 1 };

/** Where `text` ends when it starts at `from`. Linear in `text`: callers advance incrementally. */
export function advance(from: Location, text: string): Location {
  const lastNewline = text.lastIndexOf('\n');
  if (lastNewline === -1) return { line: from.line, column: from.column + codePointLength(text) };
  let lines = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i <= lastNewline; i = text.indexOf('\n', i + 1)) lines++;
  return { line: from.line + lines, column: codePointLength(text, lastNewline + 1) + 1 };
}

/** Characters (code points) in `text` from `start`: UTF-16 length less the low halves of surrogate pairs. */
export function codePointLength(text: string, start = 0): number {
  let length = text.length - start;
  for (let i = start; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0xdc00 && code <= 0xdfff) length--;
  }
  return length;
}

/** PostgreSQL error positions count characters; JavaScript strings index UTF-16 code units. */
export function codeUnitOffset(text: string, characterPosition: number): number {
  let offset = 0;
  let characters = 0;
  while (offset < text.length && characters < characterPosition) {
    const code = text.charCodeAt(offset);
    offset += code >= 0xd800 && code <= 0xdbff ? 2 : 1;
    characters++;
  }
  return offset;
}
