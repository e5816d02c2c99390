/**
 * The meta-command names psql 15 knows (src/bin/psql/command.c, exec_command). In a skipped `\if`
 * branch psql ignores a known command without reading its arguments, but still fails on an unknown
 * one ("invalid command"); dbfast does the same.
 */
const NAMES = new Set(
  [
    'a', 'C', 'c', 'connect', 'cd', 'conninfo', 'copyright', 'crosstabview', 'e', 'edit', 'ef', 'ev',
    'echo', 'qecho', 'warn', 'elif', 'else', 'endif', 'encoding', 'errverbose', 'f', 'g', 'gx', 'gdesc',
    'getenv', 'gexec', 'gset', 'h', 'help', 'H', 'html', 'i', 'include', 'ir', 'include_relative', 'if',
    'l', 'list', 'l+', 'list+', 'o', 'out', 'p', 'print', 'password', 'prompt', 'pset', 'q', 'quit', 'r',
    'reset', 'restrict', 'unrestrict', 's', 'set', 'setenv', 'sf', 'sf+', 'sv', 'sv+', 't', 'T',
    'timing', 'unset', 'w', 'write', 'watch', 'x', 'z', '!', '?',
  ],
);

export function isPsqlCommand(name: string): boolean {
  return NAMES.has(name) || name.toLowerCase() === 'copy' || name.startsWith('d') || name.startsWith('lo_');
}

/** Commands that only change how psql prints query results: no effect on the database. */
export const OUTPUT_SETTINGS = new Set(['pset', 'timing', 'x', 'a', 't', 'o', 'out', 'H', 'html', 'C', 'f', 'T']);
