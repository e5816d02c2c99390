const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/**
 * Resolves at the first SIGINT or SIGTERM, for commands that run until stopped (watch, serve). A
 * second one exits at once: what the first one waits for (a build waiting for another process's
 * build, a request) may take long, and the user asked twice.
 */
export function untilStopped(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      for (const signal of STOP_SIGNALS) {
        process.off(signal, stop);
        process.once(signal, () => process.exit(130));
      }
      resolve();
    };
    for (const signal of STOP_SIGNALS) process.on(signal, stop);
  });
}
