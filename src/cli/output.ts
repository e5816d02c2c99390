/**
 * Everything the CLI prints goes through here. What the command was asked for (a URL, a listing, a
 * report, JSON) goes to stdout, so it can be piped; progress, notes, warnings and errors go to stderr.
 * Colour only on a terminal and never with NO_COLOR, decided for each stream.
 */
import { DbfastError } from '../core/errors.js';

export { formatBytes } from '../core/size.js';

function colorFor(stream: NodeJS.WriteStream): boolean {
  if ('NO_COLOR' in process.env && process.env.NO_COLOR !== '') return false;
  if (process.env.FORCE_COLOR && process.env.FORCE_COLOR !== '0') return true;
  return Boolean(stream.isTTY) && process.env.TERM !== 'dumb';
}

const colorOnStdout = colorFor(process.stdout);
const colorOnStderr = colorFor(process.stderr);
const COLOR_CODES = /\u001b\[[0-9;]*m/g;

// Text is painted before its stream is known; a stream without colour gets it stripped.
const paint = (code: number) => (text: string) => (colorOnStdout || colorOnStderr ? `\u001b[${code}m${text}\u001b[0m` : text);
export const red = paint(31);
export const yellow = paint(33);
export const green = paint(32);
export const dim = paint(2);
export const bold = paint(1);

/** One line of what the command was asked for: data for programs (`$(dbfast seed)`) or a report line. */
export function printData(line: string): void {
  process.stdout.write(`${colorOnStdout ? line : line.replace(COLOR_CODES, '')}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function info(line: string): void {
  process.stderr.write(`${colorOnStderr ? line : line.replace(COLOR_CODES, '')}\n`);
}

export function warn(message: string, hint?: string): void {
  info(warningLine(message, hint));
}

export function warningLine(message: string, hint?: string): string {
  return `${yellow('warning:')} ${message}${hint ? dim(` (${hint})`) : ''}`;
}

export function formatError(error: unknown, verbose: boolean): string {
  if (!(error instanceof DbfastError)) {
    const text = error instanceof Error ? error.message : String(error);
    const trace = verbose && error instanceof Error && error.stack ? `\n${dim(error.stack)}` : dim('\n  (run with --verbose for details)');
    return `${red('error:')} ${text}${trace}`;
  }
  const lines = [`${red('error:')} ${error.located}`];
  if (error.detail) lines.push(...error.detail.split('\n').map((line) => `  ${line}`));
  if (error.hint) lines.push(`  ${bold('hint:')} ${error.hint}`);
  if (verbose && error.stack) lines.push(dim(error.stack));
  if (verbose && error.cause instanceof Error && error.cause.stack) lines.push(dim(`caused by: ${error.cause.stack}`));
  return lines.join('\n');
}

/** A failure as `--json` prints it: the error's code and every structured field it has. */
export function errorJson(error: unknown): Record<string, unknown> {
  if (!(error instanceof DbfastError)) return { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
  const { code, message, file, line, column, hint, detail, sqlState, schema, table, columnName, constraint } = error;
  const fields = { code, message, file, line, column, hint, detail, sqlState, schema, table, columnName, constraint };
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
}
