/**
 * Lines and columns as editors count them (columns in characters), and the conversion from
 * PostgreSQL's error positions (characters) to offsets in JavaScript strings (UTF-16 code units).
 */
import { describe, expect, it } from 'vitest';
import { advance, codePointLength, codeUnitOffset, START } from '../../../src/core/sql/position.js';

// The first and the last character outside the Basic Multilingual Plane: the edges of both surrogate ranges.
const FIRST_ASTRAL = '\u{10000}';
const LAST_ASTRAL = '\u{10FFFF}';

describe('advance', () => {
  it('moves the column along a line, one per character', () => {
    expect(advance(START, '')).toEqual({ line: 1, column: 1 });
    expect(advance({ line: 2, column: 5 }, 'abc')).toEqual({ line: 2, column: 8 });
    expect(advance(START, `é🐘${FIRST_ASTRAL}${LAST_ASTRAL}`)).toEqual({ line: 1, column: 5 });
  });

  it('counts every line break and restarts the column after the last one', () => {
    expect(advance({ line: 2, column: 5 }, 'ab\ncd')).toEqual({ line: 3, column: 3 });
    expect(advance(START, 'a\n\nb\n🐘x')).toEqual({ line: 4, column: 3 });
    expect(advance({ line: 7, column: 9 }, 'abc\n')).toEqual({ line: 8, column: 1 });
    // Only \n starts a line: a carriage return is a character of the line it ends.
    expect(advance(START, 'a\r\nb\r')).toEqual({ line: 2, column: 3 });
  });
});

describe('codePointLength', () => {
  it('counts characters, a surrogate pair as one, from an optional start', () => {
    expect(codePointLength('')).toBe(0);
    expect(codePointLength(`a${FIRST_ASTRAL}b${LAST_ASTRAL}`)).toBe(4);
    expect(codePointLength('\ud7ff\ue000')).toBe(2);
    expect(codePointLength('🐘ab', 2)).toBe(2);
    expect(codePointLength('ab🐘', 1)).toBe(2);
  });
});

describe('codeUnitOffset', () => {
  it('finds where the nth character starts, stepping over surrogate pairs whole', () => {
    expect(codeUnitOffset('abc', 0)).toBe(0);
    expect(codeUnitOffset('abc', 2)).toBe(2);
    expect(codeUnitOffset(`a${FIRST_ASTRAL}b`, 2)).toBe(3);
    expect(codeUnitOffset(`${LAST_ASTRAL}${FIRST_ASTRAL}x`, 2)).toBe(4);
    expect(codeUnitOffset('\ud7ff\ue000x', 2)).toBe(2);
  });

  it('stops at the end of the text', () => {
    expect(codeUnitOffset('abc', 10)).toBe(3);
    expect(codeUnitOffset('🐘', 5)).toBe(2);
  });
});
