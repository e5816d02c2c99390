import { describe, expect, it } from 'vitest';
import { withRemoteAdded, withRemoteRemoved } from '../../src/core/config/edit.js';

const STAGING = { url: 'postgresql://deploy@staging.example.com/app', environment: 'staging', password_env: 'STAGING_PW', allow_destructive: undefined };

/** Add then remove: the file must come back byte for byte. */
function roundTrip(text: string) {
  const added = withRemoteAdded(text, 'staging', STAGING, 'dbfast.toml');
  return { added, removed: withRemoteRemoved(added, 'staging', 'dbfast.toml') };
}

describe('adding and removing a remote in dbfast.toml', () => {
  it('appends the first remote as a table after the last line, leaving the rest as it was', () => {
    const text = '# the team database\n[database]\ntemplate_name = "app"   # aligned comment\n\n[environments.staging]\n';
    const { added, removed } = roundTrip(text);
    expect(added).toBe(
      `${text}\n[remotes.staging]\nurl = "postgresql://deploy@staging.example.com/app"\nenvironment = "staging"\npassword_env = "STAGING_PW"\n`,
    );
    expect(removed).toBe(text);
  });

  it('keeps CRLF line endings and writes the new lines with them', () => {
    const text = '# windows\r\n[database]\r\ntemplate_name = "app"\r\n\r\n';
    const { added, removed } = roundTrip(text);
    expect(added).toBe(
      '# windows\r\n[database]\r\ntemplate_name = "app"\r\n\r\n[remotes.staging]\r\nurl = "postgresql://deploy@staging.example.com/app"\r\nenvironment = "staging"\r\npassword_env = "STAGING_PW"\r\n\r\n',
    );
    expect(removed).toBe(text);
  });

  it('gives back a file without a final newline, an empty file, and one of blank lines', () => {
    for (const text of ['[database]\ntemplate_name = "app"', '', '\n\n']) expect(roundTrip(text).removed).toBe(text);
  });

  it('adds a [[remotes]] entry with its name when the file uses that form', () => {
    const text = '[[remotes]]\nname = "prod"\nhost = "db"\n';
    const { added, removed } = roundTrip(text);
    expect(added).toBe(`${text}\n[[remotes]]\nname = "staging"\nurl = "postgresql://deploy@staging.example.com/app"\nenvironment = "staging"\npassword_env = "STAGING_PW"\n`);
    expect(removed).toBe(text);
  });

  it('removes exactly the named table: the comment above it, its neighbours and the blank lines between them stay', () => {
    const text = '[remotes.a]\nhost = "a"\n\n# about b\n[remotes.b]\nhost = "b"   # trailing\nport = 5433\n\n[remotes.c]\nhost = "c"\n';
    expect(withRemoteRemoved(text, 'b', 'dbfast.toml')).toBe('[remotes.a]\nhost = "a"\n\n# about b\n\n[remotes.c]\nhost = "c"\n');
    expect(withRemoteRemoved(text, 'c', 'dbfast.toml')).toBe('[remotes.a]\nhost = "a"\n\n# about b\n[remotes.b]\nhost = "b"   # trailing\nport = 5433\n');
    expect(withRemoteRemoved(text, 'a', 'dbfast.toml')).toBe('\n# about b\n[remotes.b]\nhost = "b"   # trailing\nport = 5433\n\n[remotes.c]\nhost = "c"\n');
  });

  it('removes a remote\'s sub-tables with it', () => {
    const text = '[remotes.a]\nhost = "a"\n\n[remotes.a.options]\nx = 1\n\n[remotes.b]\nhost = "b"\n';
    expect(withRemoteRemoved(text, 'a', 'dbfast.toml')).toBe('\n[remotes.b]\nhost = "b"\n');
  });

  it('removes the [[remotes]] entry of that name only', () => {
    const text = '[[remotes]]\nname = "a"\n\n[[remotes]]\nname = "b"\nhost = "b"\n\n[[remotes]]\nname = "c"\n';
    expect(withRemoteRemoved(text, 'b', 'dbfast.toml')).toBe('[[remotes]]\nname = "a"\n\n[[remotes]]\nname = "c"\n');
  });

  it('writes values TOML needs escaped as valid strings', () => {
    const added = withRemoteAdded('', 'odd', { url: 'postgresql://u@h/a"b\\c', environment: 'e' }, 'dbfast.toml');
    expect(added).toBe('[remotes.odd]\nurl = "postgresql://u@h/a\\"b\\\\c"\nenvironment = "e"\n');
  });

  it('refuses a file whose TOML cannot be located exactly (a byte order mark) or no longer parses, quoting none of it', () => {
    const expected = (why: string) =>
      expect.objectContaining({ code: 'CONFIG_INVALID', message: `cannot edit the remotes safely: ${why}`, hint: 'edit dbfast.toml by hand; nothing was written' });
    expect(() => withRemoteRemoved('\uFEFF[remotes.a]\nhost = "h"\n', 'a', 'dbfast.toml')).toThrow(expected('its TOML cannot be located exactly'));
    expect(() => withRemoteAdded('url = "postgresql://u:hunter2@h/d"\n[[', 'a', {}, 'dbfast.toml')).toThrow(expected('it is not valid TOML now'));
  });

  it('refuses, writing nothing, where remotes are written inline', () => {
    for (const text of ['remotes = { staging = { host = "h" } }\n', '[remotes]\nstaging = { host = "h" }\n', '[remotes]\nstaging.host = "h"\n']) {
      expect(() => withRemoteRemoved(text, 'staging', 'conf/db.toml')).toThrow(
        expect.objectContaining({
          code: 'CONFIG_INVALID',
          file: 'conf/db.toml',
          message: 'cannot edit the remotes safely: they are not all written as [remotes.NAME] or [[remotes]] tables',
          hint: 'edit conf/db.toml by hand; nothing was written',
        }),
      );
    }
  });
});
