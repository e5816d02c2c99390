/**
 * Build progress on stderr: one line rewritten in place on a terminal (file n/N, path, elapsed),
 * plain lines otherwise, so CI logs stay readable.
 */
import type { ExecuteOptions } from '../core/sql/execute.js';
import { dim, info, warningLine } from './output.js';

/** The build's callbacks (spread them into build or seed options), and `done` to clear the line. */
export interface Progress extends Required<Pick<ExecuteOptions, 'onFileStart' | 'onEcho' | 'onWarn' | 'onWarning'>> {
  done(): void;
}

const BAR_WIDTH = 20;

function bar(fraction: number): string {
  const filled = Math.round(fraction * BAR_WIDTH);
  return `${'█'.repeat(filled)}${dim('░'.repeat(BAR_WIDTH - filled))}`;
}

export function buildProgress(): Progress {
  const started = performance.now();
  const live = Boolean(process.stderr.isTTY);
  let current = '';
  let timer: NodeJS.Timeout | undefined;
  const render = () => {
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    process.stderr.write(`\r\u001b[K${current} ${dim(`${seconds}s`)}`);
  };
  const clear = () => live && process.stderr.write('\r\u001b[K');
  // A line printed while the bar is shown goes above it.
  const printAbove = (line: string) => {
    clear();
    info(line);
    if (live && current) render();
  };
  return {
    onFileStart(file, index, total) {
      current = `${live ? `${bar(index / total)} ` : ''}[${index + 1}/${total}] ${file.relativePath}`;
      if (!live) return info(`  ${current}`);
      render();
      timer ??= setInterval(render, 100).unref();
    },
    onEcho: printAbove,
    // psql prints \warn on standard error, where dbfast's messages go too.
    onWarn: printAbove,
    onWarning: (warning) => printAbove(warningLine(warning.located, warning.hint)),
    done() {
      if (timer) clearInterval(timer);
      clear();
    },
  };
}
