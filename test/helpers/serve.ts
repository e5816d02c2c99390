/** Runs `dbfast serve --port 0` as a child process, the way users run it, and talks to it. */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { CLI, cliEnv } from './cli.js';

export interface ServeProcess {
  url: string;
  child: ChildProcess;
  stderr(): string;
  /** Sends `signal` and waits for the exit code (null when killed by the signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface ServeExit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts dbfast serve in `cwd`; resolves once it printed its URL, or rejects with its output if it exits first. */
export function startServe(cwd: string, env: Record<string, string | undefined>, args: string[] = []): Promise<ServeProcess> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', ...args], { cwd, env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return new Promise((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const url = /^(http:\/\/\S+)\n/.exec(stdout)?.[1];
      if (url) {
        resolve({
          url,
          child,
          stderr: () => stderr,
          async stop(signal = 'SIGTERM') {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            return (await exited)[0];
          },
        });
      }
    });
    exited.then(([code]) => reject(Object.assign(new Error(`dbfast serve exited with ${code}: ${stderr}`), { exit: { code, stdout, stderr } })));
  });
}

/** Runs dbfast serve expecting it to exit at once (bad configuration). */
export async function serveExit(cwd: string, env: Record<string, string | undefined>, args: string[] = []): Promise<ServeExit> {
  try {
    const running = await startServe(cwd, env, args);
    await running.stop();
    throw new Error(`dbfast serve started on ${running.url}`);
  } catch (error) {
    const exit = (error as { exit?: ServeExit }).exit;
    if (!exit) throw error;
    return exit;
  }
}

export interface Answer {
  status: number;
  /** The parsed JSON body; undefined for an empty one. */
  body: unknown;
  contentType: string | null;
}

/** One request; the body must be JSON or empty (what IntegreSQL's Go client relies on). */
export async function call(url: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? undefined : JSON.parse(text), contentType: response.headers.get('content-type') };
}
