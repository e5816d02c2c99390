/**
 * Build progress on stderr: one line rewritten in place on a terminal (file n/N, path, elapsed),
 * plain lines otherwise, so CI logs stay readable.
 */
import type { DbfastError } from '../core/errors.js';
import type { SqlFile } from '../core/sql/execute.js';
import { dim, info, warn } from './output.js';

export interface Progress {
  onFileStart(file: SqlFile, index: number, total: number): void;
  onEcho(text: string): void;
  /** A statement that failed while the file had ON_ERROR_STOP off. */
  onWarning(warning: DbfastError): void;
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
  return {
    onFileStart(file, index, total) {
      current = `${live ? `${bar(index / total)} ` : ''}[${index + 1}/${total}] ${file.relativePath}`;
      if (!live) return info(`  ${current}`);
      render();
      timer ??= setInterval(render, 100).unref();
    },
    onEcho(text) {
      clear();
      info(text);
      if (live && current) render();
    },
    onWarning(warning) {
      clear();
      warn(warning.located);
      if (live && current) render();
    },
    done() {
      if (timer) clearInterval(timer);
      clear();
    },
  };
}
