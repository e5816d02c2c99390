/** Offsets to 1-based line and column, columns counted in characters (code points) as editors do. */
export interface LineIndex {
  locate(offset: number): { line: number; column: number };
  offsetOfLine(line: number): number;
}

export function lineIndex(text: string): LineIndex {
  const starts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return {
    locate(offset) {
      let low = 0;
      let high = starts.length - 1;
      while (low < high) {
        const mid = (low + high + 1) >> 1;
        if (starts[mid]! <= offset) low = mid;
        else high = mid - 1;
      }
      const lineStart = starts[low]!;
      return { line: low + 1, column: codePointLength(text.slice(lineStart, offset)) + 1 };
    },
    offsetOfLine(line) {
      return starts[Math.min(Math.max(line, 1), starts.length) - 1]!;
    },
  };
}

export function codePointLength(text: string): number {
  let length = 0;
  for (const _ of text) length++;
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
