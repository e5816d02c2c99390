/**
 * The template fingerprint decides whether a build is needed: it must change with anything that
 * changes the template's content, and with nothing else.
 */
import { describe, expect, it } from 'vitest';
import { computeFingerprint, type FingerprintInput } from '../../src/core/fingerprint.js';

const SCHEMA = { relativePath: '0_schema/01_tables.sql', hash: 'a'.repeat(64) };
const SEED = { relativePath: '1_seed/01_users.sql', hash: 'b'.repeat(64) };
const SELECTION = { include: ['**/*.sql'], exclude: [], environment: null };

function fingerprint(input: Partial<FingerprintInput> = {}): string {
  return computeFingerprint({ files: [SCHEMA, SEED], selection: SELECTION, ...input });
}

describe('computeFingerprint', () => {
  it('is stable across releases: a change here rebuilds every template, so bump FORMAT_VERSION on purpose', () => {
    expect(fingerprint()).toBe('b4dfa17db8cb96eecabb704f2b790b6516198bf7e39f01dcf2637bb651c96988');
  });

  it('changes when a file is edited, renamed, added, removed or moved in the order', () => {
    const fingerprints = [
      fingerprint(),
      fingerprint({ files: [SCHEMA, { ...SEED, hash: 'c'.repeat(64) }] }),
      fingerprint({ files: [SCHEMA, { ...SEED, relativePath: '1_seed/02_users.sql' }] }),
      fingerprint({ files: [SCHEMA, SEED, { relativePath: '2_more/x.sql', hash: 'd'.repeat(64) }] }),
      fingerprint({ files: [SCHEMA] }),
      fingerprint({ files: [SEED, SCHEMA] }),
      fingerprint({ files: [] }),
    ];
    expect(new Set(fingerprints).size).toBe(fingerprints.length);
  });

  it('keeps the boundary between a path and its hash: moving characters across it is a change', () => {
    const one = fingerprint({ files: [{ relativePath: 'a.sql', hash: `1${'f'.repeat(63)}` }] });
    const other = fingerprint({ files: [{ relativePath: 'a.sql1', hash: 'f'.repeat(63) }] });
    expect(one).not.toBe(other);
  });

  it('changes with the selection settings (patterns, environment rules)', () => {
    expect(fingerprint({ selection: { ...SELECTION, exclude: ['**/seed/**'] } })).not.toBe(fingerprint());
    expect(fingerprint({ selection: { ...SELECTION, environment: { excludeDirectories: ['1_seed'] } } })).not.toBe(fingerprint());
  });

  it('ignores modification times: touching a file is not a change', () => {
    const touched = [SCHEMA, SEED].map((file, index) => ({ ...file, mtimeMs: Date.now() + index }));
    expect(fingerprint({ files: touched })).toBe(fingerprint());
  });
});
