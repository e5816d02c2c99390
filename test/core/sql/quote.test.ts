/** psql's quoting of :'var' and :"var" values (PQescapeLiteral, PQescapeIdentifier). */
import { describe, expect, it } from 'vitest';
import { quoteIdentifier, quoteLiteral } from '../../../src/core/sql/quote.js';

describe('quoteLiteral', () => {
  it('doubles single quotes', () => {
    expect(quoteLiteral("it's")).toBe("'it''s'");
    expect(quoteLiteral('')).toBe("''");
  });

  it("writes an E'' string after a space when the value holds a backslash, doubling it", () => {
    expect(quoteLiteral('C:\\dir\\')).toBe(" E'C:\\\\dir\\\\'");
    expect(quoteLiteral("a'\\b")).toBe(" E'a''\\\\b'");
  });
});

describe('quoteIdentifier', () => {
  it('wraps in double quotes and doubles those inside', () => {
    expect(quoteIdentifier('My "T"')).toBe('"My ""T"""');
    expect(quoteIdentifier("it's\\")).toBe('"it\'s\\"');
  });
});
