/**
 * Arguments of psql meta-commands: whitespace-separated, 'single-quoted' with psql's escapes,
 * "double-quoted" kept as written, and :var / :'var' / :"var" / :{?var} interpolation outside quotes.
 */
import { VARIABLE_NAME_CHARS, type Variables } from './lexer.js';
import { quoteIdentifier, quoteLiteral } from './quote.js';

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', b: '\b', r: '\r', f: '\f' };
const NAME = `[${VARIABLE_NAME_CHARS}]+`;
const VARIABLE_TEST = new RegExp(`^:\\{\\?(${NAME})\\}`);
const VARIABLE = new RegExp(`^:(?:'(${NAME})'|"(${NAME})"|(${NAME}))`);

export function parseMetaArgs(args: string, variables: Variables): string[] {
  const result: string[] = [];
  let i = 0;
  while (i < args.length) {
    while (i < args.length && /\s/.test(args[i]!)) i++;
    if (i >= args.length) break;
    let token = '';
    // psql drops an argument whose quote is never closed (and says so, but goes on).
    let complete = true;
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
        if (i >= args.length) complete = false;
        i++;
      } else if (ch === '`') {
        throw new Error('shell commands in backquotes are not supported: dbfast does not run programs from SQL files');
      } else if (ch === '"') {
        const end = args.indexOf('"', i + 1);
        if (end === -1) complete = false;
        const stop = end === -1 ? args.length : end + 1;
        token += args.slice(i, stop);
        i = stop;
      } else if (ch === ':' && VARIABLE_TEST.test(args.slice(i))) {
        const [test, name] = VARIABLE_TEST.exec(args.slice(i))!;
        token += variables.has(name!) ? 'TRUE' : 'FALSE';
        i += test.length;
      } else if (ch === ':' && VARIABLE.test(args.slice(i))) {
        const [reference, literal, identifier, plain] = VARIABLE.exec(args.slice(i))!;
        const value = variables.get((literal ?? identifier ?? plain)!);
        // An unknown variable stays as written, quotes included.
        token += value === undefined ? reference : literal ? quoteLiteral(value) : identifier ? quoteIdentifier(value) : value;
        i += reference.length;
      } else {
        token += ch;
        i++;
      }
    }
    if (complete) result.push(token);
  }
  return result;
}
