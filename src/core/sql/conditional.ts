/**
 * psql's `\if` / `\elif` / `\else` / `\endif` (src/bin/psql/conditional.c, command.c): a stack of
 * branch states, one stack per file (an included file cannot close its includer's `\if`), and
 * psql's reading of boolean values (ParseVariableBool).
 */
import type { Location } from './position.js';

/** Why a conditional command cannot run, in psql's words. */
export class ConditionalError extends Error {}

type Branch =
  | 'true' // this branch runs
  | 'false' // not yet: a later \elif or \else may run
  | 'ignored' // an earlier branch ran, or the enclosing one does not run
  | 'else-true'
  | 'else-false';

interface Open {
  branch: Branch;
  /** Where the `\if` is, for the error at the end of the file. */
  at: Location;
}

export class ConditionalStack {
  private readonly stack: Open[] = [];

  /** Whether statements and meta-commands at this point run. */
  get active(): boolean {
    const top = this.stack.at(-1);
    return top === undefined || top.branch === 'true' || top.branch === 'else-true';
  }

  /** `evaluate` is called only when psql would evaluate the expression (the enclosing branch runs). */
  if(at: Location, evaluate: () => boolean): void {
    this.stack.push({ branch: this.active ? (evaluate() ? 'true' : 'false') : 'ignored', at });
  }

  elif(evaluate: () => boolean): void {
    const top = this.top('elif');
    if (top.branch === 'else-true' || top.branch === 'else-false') throw new ConditionalError('\\elif: cannot occur after \\else');
    if (top.branch === 'true') top.branch = 'ignored';
    else if (top.branch === 'false') top.branch = evaluate() ? 'true' : 'false';
  }

  else(): void {
    const top = this.top('else');
    if (top.branch === 'else-true' || top.branch === 'else-false') throw new ConditionalError('\\else: cannot occur after \\else');
    top.branch = top.branch === 'false' ? 'else-true' : 'else-false';
  }

  endif(): void {
    this.top('endif');
    this.stack.pop();
  }

  /** Offset of the innermost `\if` still open, if any. */
  get unclosed(): Location | undefined {
    return this.stack.at(-1)?.at;
  }

  private top(command: string): Open {
    const top = this.stack.at(-1);
    if (!top) throw new ConditionalError(`\\${command}: no matching \\if`);
    return top;
  }
}

/**
 * psql's boolean values: any unique prefix of true, false, yes, no (at least two letters of on and
 * off), 1 and 0, case-insensitive. Throws psql's message for anything else.
 */
export function parseBoolean(value: string, name: string): boolean {
  const lower = value.toLowerCase();
  const prefixOf = (word: string, minimum = 1) => lower.length >= minimum && word.startsWith(lower);
  if (prefixOf('true') || prefixOf('yes') || prefixOf('on', 2) || lower === '1') return true;
  if (prefixOf('false') || prefixOf('no') || prefixOf('off', 2) || lower === '0') return false;
  throw new ConditionalError(`unrecognized value "${value}" for "${name}": Boolean expected`);
}
