import { spawn } from 'node:child_process';
import { parseDuration } from '../core/duration.js';
import { plural } from '../core/plural.js';
import { type BuiltEvent, type WatchEvent, watchProject } from '../core/watch.js';
import type { GlobalOptions } from './globals.js';
import { dim, errorJson, formatError, green, info, printData, warn } from './output.js';
import { buildProgress, type Progress } from './progress.js';
import { openProject, showConfigWarnings } from './project.js';
import { untilStopped } from './signals.js';

interface WatchFlags {
  debounce?: string;
  exec?: string;
  json?: boolean;
}

export async function watch(globals: GlobalOptions, options: WatchFlags): Promise<void> {
  const debounceMs = options.debounce === undefined ? undefined : parseDuration(options.debounce);
  const verbose = Boolean(globals.verbose || process.env.DBFAST_DEBUG);
  const progress = progressPerBuild();
  const watcher = await watchProject(await openProject(globals), {
    environments: globals.env === undefined ? undefined : [globals.env],
    debounceMs,
    build: progress.callbacks,
    onEvent(event) {
      progress.follow(event);
      if (options.json) printData(JSON.stringify(event.kind === 'failed' ? { ...event, error: errorJson(event.error) } : event));
      else printEvent(event, verbose);
    },
    afterBuild: options.exec === undefined ? undefined : runAfterBuild(options.exec, Boolean(options.json)),
  });
  await untilStopped();
  await watcher.close();
}

function printEvent(event: WatchEvent, verbose: boolean) {
  switch (event.kind) {
    case 'watching': {
      const templates = event.environments.map((environment) => environment.template).join(', ');
      return info(dim(`watching ${event.paths.join(' and ')} for ${templates} (Ctrl-C to stop)`));
    }
    case 'reloaded':
      return showConfigWarnings(event.warnings);
    case 'unchanged':
      return info(dim(`${event.template} is up to date`));
    case 'built': {
      // A list, so that more facts about a build can join the file count on the same line.
      const details = [plural(event.files, 'file'), ...(event.reusedLayers.length > 0 ? [`reused ${event.reusedLayers.join(', ')}`] : [])];
      return info(`${green('rebuilt')} ${event.template} in ${(event.durationMs / 1000).toFixed(2)}s ${dim(`(${details.join(', ')})`)}`);
    }
    case 'failed':
      info(formatError(event.error, verbose));
      if (event.template !== undefined) info(dim(`  keeping the last good ${event.template}`));
  }
}

/** One progress line per build, each with its own clock, fed by the callbacks the watcher is given once. */
function progressPerBuild() {
  let current: Progress | undefined;
  const callbacks: Omit<Progress, 'done'> = {
    // Off a terminal, a line per file of every rebuild would bury the one line per rebuild.
    onFileStart: (...args) => process.stderr.isTTY && current?.onFileStart(...args),
    onEcho: (text) => current?.onEcho(text),
    onWarn: (text) => current?.onWarn(text),
    onWarning: (warning) => current?.onWarning(warning),
  };
  return {
    callbacks,
    follow(event: WatchEvent) {
      if (event.kind === 'building') current = buildProgress();
      else if (event.kind === 'built' || event.kind === 'unchanged' || event.kind === 'failed') {
        current?.done();
        current = undefined;
      }
    },
  };
}

/**
 * `--exec`: the command runs in a shell with DBFAST_TEMPLATE and DBFAST_ENV set to what was rebuilt
 * (so `dbfast seed` inside it seeds that environment). With --json its output goes to stderr,
 * leaving stdout to the events.
 */
function runAfterBuild(command: string, json: boolean): (event: BuiltEvent) => Promise<void> {
  return (event) =>
    new Promise((resolve) => {
      const env = { ...process.env, DBFAST_TEMPLATE: event.template, ...(event.environment === null ? {} : { DBFAST_ENV: event.environment }) };
      const child = spawn(command, { shell: true, env, stdio: ['ignore', json ? 2 : 'inherit', 'inherit'] });
      child.on('error', (error) => warn(`--exec could not start: ${error.message}`));
      child.on('close', (code, signal) => {
        if (code !== 0) warn(`--exec ${signal ? `was stopped by ${signal}` : `exited with code ${code}`}: ${command}`);
        resolve();
      });
    });
}
