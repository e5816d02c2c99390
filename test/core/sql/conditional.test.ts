/**
 * psql's \if stack and its reading of booleans (src/bin/psql/conditional.c, variables.c
 * ParseVariableBool), on their own; the executor and parity tests run them inside scripts.
 */
import { describe, expect, it } from 'vitest';
import { ConditionalError, ConditionalStack, parseBoolean } from '../../../src/core/sql/conditional.js';

describe('parseBoolean', () => {
  it('reads any prefix of true, yes, false and no, at least two letters of on and off, 1 and 0, in any case', () => {
    for (const value of ['t', 'tr', 'TRUE', 'y', 'Ye', 'yes', 'on', 'ON', '1']) expect(parseBoolean(value, 'v'), value).toBe(true);
    for (const value of ['f', 'fa', 'False', 'n', 'NO', 'of', 'off', 'OFF', '0']) expect(parseBoolean(value, 'v'), value).toBe(false);
  });

  it('refuses what is ambiguous, longer than the word, empty or anything else, in psql words', () => {
    for (const value of ['o', 'O', '', 'truex', 'yess', 'onn', 'offf', 'nope', '01', '10', '2', ' true', 'true ']) {
      expect(() => parseBoolean(value, 'ON_ERROR_STOP'), JSON.stringify(value)).toThrow(ConditionalError);
    }
    expect(() => parseBoolean('maybe', '\\if expression')).toThrow('unrecognized value "maybe" for "\\if expression": Boolean expected');
  });
});

describe('ConditionalStack', () => {
  const at = { line: 3, column: 1 };

  /** Which of the branches run, for `\if` evaluating to `first`, then `\elif`s evaluating to `elifs`, then `\else`. */
  function branches(first: boolean, elifs: boolean[]): boolean[] {
    const stack = new ConditionalStack();
    stack.if(at, () => first);
    const active = [stack.active];
    for (const value of elifs) {
      stack.elif(() => value);
      active.push(stack.active);
    }
    stack.else();
    active.push(stack.active);
    stack.endif();
    expect(stack.active).toBe(true);
    return active;
  }

  it('runs everything outside \\if', () => {
    expect(new ConditionalStack().active).toBe(true);
    expect(new ConditionalStack().unclosed).toBeUndefined();
  });

  it('runs the first branch whose expression is true, and only that one', () => {
    expect(branches(true, [true, false])).toEqual([true, false, false, false]);
    expect(branches(false, [false, true, true])).toEqual([false, false, true, false, false]);
    expect(branches(false, [false])).toEqual([false, false, true]);
    expect(branches(true, [])).toEqual([true, false]);
  });

  it('evaluates an expression only where psql would: not after a branch ran, nor inside a skipped branch', () => {
    const evaluated: string[] = [];
    const value = (name: string, result: boolean) => () => {
      evaluated.push(name);
      return result;
    };
    const stack = new ConditionalStack();
    stack.if(at, value('outer if', false));
    stack.if(at, value('inner if', true));
    expect(stack.active).toBe(false);
    stack.elif(value('inner elif', true));
    stack.endif();
    stack.elif(value('outer elif', true));
    stack.elif(value('second elif', true));
    stack.endif();
    expect(evaluated).toEqual(['outer if', 'outer elif']);
  });

  it('keeps a nested \\if inside a skipped branch skipped, \\else included', () => {
    const stack = new ConditionalStack();
    stack.if(at, () => false);
    stack.if({ line: 4, column: 3 }, () => true);
    stack.else();
    expect(stack.active).toBe(false);
    expect(stack.unclosed).toEqual({ line: 4, column: 3 });
    stack.endif();
    expect(stack.unclosed).toEqual(at);
    stack.else();
    expect(stack.active).toBe(true);
  });

  it('refuses \\elif, \\else and \\endif without \\if, and \\elif or \\else after \\else', () => {
    expect(() => new ConditionalStack().elif(() => true)).toThrow('\\elif: no matching \\if');
    expect(() => new ConditionalStack().else()).toThrow('\\else: no matching \\if');
    expect(() => new ConditionalStack().endif()).toThrow('\\endif: no matching \\if');
    for (const first of [true, false]) {
      const stack = new ConditionalStack();
      stack.if(at, () => first);
      stack.else();
      expect(() => stack.elif(() => true)).toThrow('\\elif: cannot occur after \\else');
      expect(() => stack.else()).toThrow('\\else: cannot occur after \\else');
      stack.endif();
    }
  });
});
