import { describe, expect, it } from 'vitest';
import { compileSelection } from '../../src/core/patterns.js';

const PATHS = [
  'a.sql',
  '.a.sql',
  '0_schema/01.sql',
  '1_seed/deep/er/02.sql',
  '1_seed/.hidden/03.sql',
  '1_seed/notes.md',
  'db/x/1.sql',
  'db/y/z/2.psql',
  'docs/up/0_schema/01.sql',
  'vendor/lib/b.sql',
  'archive/old.sql',
  'b/c/d.sql',
];

const PATTERN_SETS: [string[], string[]][] = [
  [['**/*.sql'], []],
  [['[0-9]*/**/*.sql'], []],
  [['*.sql'], []],
  [['db/*/*.sql', 'db/**/*.psql'], []],
  [['**/*.sql'], ['vendor/**', '**/deep/**']],
  [['{0_schema,b/c}/*.sql'], []],
  [['!**/*.md'], []],
  [['1_seed/**'], ['**/*.md']],
  [['./0_schema/*.sql', '**/.hidden/*.sql'], []],
];

function ancestors(path: string): string[] {
  const parts = path.split('/').slice(0, -1);
  return parts.map((_, index) => parts.slice(0, index + 1).join('/'));
}

describe('compileSelection', () => {
  it.each(PATTERN_SETS)('never skips a folder that holds a selected file: include %j, exclude %j', (include, exclude) => {
    const selection = compileSelection(include, exclude);
    for (const path of PATHS.filter(selection.selects)) {
      for (const folder of ancestors(path)) expect(selection.mayContain(folder), `${folder} holds ${path}`).toBe(true);
    }
  });

  it('skips folders no include pattern reaches', () => {
    const selection = compileSelection(['[0-9]*/**/*.sql', 'db/*/*.sql'], []);
    expect(['docs', 'docs/up', 'db/x/deeper', 'x1_seed'].filter(selection.mayContain)).toEqual([]);
    expect(['1_seed', '1_seed/any/depth', 'db', 'db/x'].every(selection.mayContain)).toBe(true);
  });

  it('skips folders whose names start with a dot, as ** does', () => {
    const selection = compileSelection(['**/*.sql'], []);
    expect(selection.mayContain('.git')).toBe(false);
    expect(selection.mayContain('1_seed/.hidden')).toBe(false);
    expect(selection.mayContain('1_seed/visible')).toBe(true);
  });

  it('skips folders an exclude pattern ending in /** covers, and only those', () => {
    const selection = compileSelection(['**/*.sql'], ['vendor/**', '**/node_modules/**', 'archive/*.sql']);
    expect(['vendor', 'vendor/lib', 'a/node_modules', 'a/node_modules/x'].filter(selection.mayContain)).toEqual([]);
    expect(selection.mayContain('archive')).toBe(true);
  });

  it('enters every folder for patterns it does not reason about: negations, slashes inside braces', () => {
    expect(compileSelection(['!**/*.md'], []).mayContain('.anything')).toBe(true);
    expect(compileSelection(['{a,b/c}/*.sql'], []).mayContain('x/y')).toBe(true);
  });
});

describe('mayContain: folders the scan can skip', () => {
  it('skips a folder only for an exclude ending in /**, not for one that names its direct children', () => {
    const selection = compileSelection(['**/*.sql'], ['db/*', 'vendor/**']);
    expect(selection.mayContain('db/x')).toBe(true);
    expect(selection.selects('db/x/1.sql')).toBe(true);
    expect(selection.mayContain('vendor/lib')).toBe(false);
  });

  it('skips a folder once the include pattern has no segment left for what lies beneath it', () => {
    const selection = compileSelection(['db/*.sql'], []);
    expect(selection.mayContain('db')).toBe(true);
    expect(selection.mayContain('db/x')).toBe(false);
    // A folder named like the file pattern: the pattern ends at it, so nothing beneath it is selected.
    expect(selection.mayContain('db/x.sql')).toBe(false);
    expect(selection.mayContain('db/x.sql/y')).toBe(false);
  });
});
