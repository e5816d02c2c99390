import { bold } from './output.js';

/**
 * A yes/no question on the terminal, or with `typed` the exact text to type back; `{}` when stdin
 * or stderr is no terminal, so the caller requires --yes instead.
 */
export function terminalConfirm(): { confirm?: (question: string, typed?: string) => Promise<boolean> } {
  return process.stdin.isTTY && process.stderr.isTTY ? { confirm: ask } : {};
}

async function ask(question: string, typed?: string): Promise<boolean> {
  const { createInterface } = await import('node:readline/promises');
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    if (typed !== undefined) return (await prompt.question(`${question}\ntype ${bold(typed)} to confirm: `)).trim() === typed;
    return /^y(es)?$/i.test((await prompt.question(`${question} [y/N] `)).trim());
  } finally {
    prompt.close();
  }
}
