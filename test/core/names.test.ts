/**
 * The names dbfast gives PostgreSQL: database (clone) names it refuses rather than let the server
 * truncate or misread them, and template names, which must leave room for a build's scratch suffix.
 */
import { describe, expect, it } from 'vitest';
import { DbfastError } from '../../src/core/errors.js';
import { defaultTemplateName, deriveTemplateName, templateNameProblem, validateDatabaseName } from '../../src/core/names.js';

function refusal(name: string, what?: string): DbfastError {
  try {
    validateDatabaseName(name, what);
  } catch (error) {
    expect(error).toBeInstanceOf(DbfastError);
    return error as DbfastError;
  }
  throw new Error(`expected "${name}" to be refused`);
}

describe('validateDatabaseName', () => {
  it('returns names made of letters (any script), digits, _, $ and -', () => {
    for (const name of ['app', 'App_Test', 'x1', '42', '_', 'price$', 'feature-branch', 'données', 'データ']) {
      expect(validateDatabaseName(name)).toBe(name);
    }
  });

  it('refuses an empty name, naming what was asked for', () => {
    expect(refusal('')).toMatchObject({ code: 'USAGE', message: 'database name is empty' });
    expect(refusal('', 'clone name').message).toBe('clone name is empty');
  });

  it('counts bytes, not characters, against the 63 PostgreSQL keeps', () => {
    expect(validateDatabaseName('x'.repeat(63))).toBe('x'.repeat(63));
    expect(refusal('x'.repeat(64))).toMatchObject({ code: 'USAGE', message: `database name "${'x'.repeat(64)}" is longer than 63 bytes` });
    // 31 two-byte letters and one ASCII letter: 32 characters, 63 bytes; one more two-byte letter is 64.
    expect(validateDatabaseName(`${'é'.repeat(31)}a`)).toBe(`${'é'.repeat(31)}a`);
    expect(refusal('é'.repeat(32), 'clone name').message).toBe(`clone name "${'é'.repeat(32)}" is longer than 63 bytes`);
  });

  it('refuses any other character, wherever it stands', () => {
    for (const name of ['has space', ' lead', 'trail ', 'bad"quote', "it's", 'a.b', 'a/b', 'semi;colon', 'tab\there', 'new\nline']) {
      expect(refusal(name)).toMatchObject({ code: 'USAGE', message: `database name "${name}" may contain only letters, digits, _, $ and -` });
    }
  });
});

describe('template names', () => {
  it('are lowercase identifiers that never need quoting', () => {
    for (const name of ['app', '_app', 'app_2', 'a']) expect(templateNameProblem(name), name).toBeNull();
    for (const name of ['', 'App', '2app', 'app-x', 'app x', ' app', 'app ', 'app$', 'données', 'app\n']) {
      expect(templateNameProblem(name), JSON.stringify(name)).toMatch(/^must be a lowercase identifier/);
    }
  });

  it('leave room for a build scratch suffix (__b and 8 hex digits) within 63 bytes', () => {
    const longest = 'x'.repeat(52);
    expect(templateNameProblem(longest)).toBeNull();
    expect(validateDatabaseName(`${longest}__b0123abcd`)).toBe(`${longest}__b0123abcd`);
    expect(templateNameProblem(`${longest}x`)).toMatch(/^is longer than 52 bytes/);
  });
});

describe('defaultTemplateName', () => {
  it('slugs the project folder name into <slug>_template', () => {
    expect(defaultTemplateName('/work/Café Shop')).toBe('cafe_shop_template');
    expect(defaultTemplateName('/work/my - app')).toBe('my_app_template');
    expect(defaultTemplateName('/work/my__app')).toBe('my_app_template');
    expect(defaultTemplateName('/work/app2')).toBe('app2_template');
    expect(defaultTemplateName('/work/2app')).toBe('_2app_template');
    expect(defaultTemplateName('/work/---')).toBe('dbfast_template');
  });
});

describe('deriveTemplateName', () => {
  it('drops every underscore left at the end of a shortened base', () => {
    const base = `${'a'.repeat(44)}____`;
    expect(deriveTemplateName(base, 'local')).toBe(`${'a'.repeat(44)}_local`);
  });
});
