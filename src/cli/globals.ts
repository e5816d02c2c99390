/** The options every command takes (`-c`, `-e`, `--verbose`). */
export interface GlobalOptions {
  config?: string;
  env?: string;
  verbose?: boolean;
}
