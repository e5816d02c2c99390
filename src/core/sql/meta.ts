/**
 * Arguments of psql meta-commands: whitespace-separated, 'single-quoted' with psql's escapes,
 * "double-quoted" kept as written, and :var / :'var' / :"var" / :{?var} interpolation outside quotes.
 */
import type { Variables } from './lexer.js';
import { quoteIdentifier, quoteLiteral } from './quote.js';

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', b: '\b', r: '\r', f: '\f' };

export function parseMetaArgs(args: string, variables: Variables): string[] {
  const result: string[] = [];
  let i = 0;
  while (i < args.length) {
    while (i < args.length && /\s/.test(args[i]!)) i++;
    if (i >= args.length) break;
    let token = '';
    while (i < args.length && !/\s/.test(args[i]!)) {
      const ch = args[i]!;
      if (ch === "'") {
        i++;
        while (i < args.length && !(args[i] === "'" && args[i + 1] !== "'")) {
          if (args[i] === "'") {
            token += "'";
            i += 2;
          } else if (args[i] === '\\' && i + 1 < args.length) {
            const numeric = /^(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2}))/.exec(args.slice(i + 1, i + 4));
            if (numeric) {
              token += String.fromCharCode(numeric[1] ? Number.parseInt(numeric[1], 8) : Number.parseInt(numeric[2]!, 16));
              i += 1 + numeric[0].length;
            } else {
              token += ESCAPES[args[i + 1]!] ?? args[i + 1];
              i += 2;
            }
          } else {
            token += args[i++];
          }
        }
        i++;
      } else if (ch === '`') {
        throw new Error('shell commands in backquotes are not supported: dbfast does not run programs from SQL files');
      } else if (ch === '"') {
        const end = args.indexOf('"', i + 1);
        const stop = end === -1 ? args.length : end + 1;
        token += args.slice(i, stop);
        i = stop;
      } else if (ch === ':' && /^:\{\?[A-Za-z0-9_]+\}/.test(args.slice(i))) {
        const end = args.indexOf('}', i);
        token += variables.has(args.slice(i + 3, end)) ? 'TRUE' : 'FALSE';
        i = end + 1;
      } else if (ch === ':') {
        const match = /^:(?:'([A-Za-z0-9_]+)'|"([A-Za-z0-9_]+)"|([A-Za-z0-9_]+))/.exec(args.slice(i));
        const name = match?.[1] ?? match?.[2] ?? match?.[3];
        const value = name === undefined ? undefined : variables.get(name);
        if (match && value !== undefined) {
          token += match[1] ? quoteLiteral(value).trim() : match[2] ? quoteIdentifier(value) : value;
          i += match[0].length;
        } else {
          token += ch;
          i++;
        }
      } else {
        token += ch;
        i++;
      }
    }
    result.push(token);
  }
  return result;
}
