/**
 * The CLI as one ESM bundle (one chunk per lazily loaded command): Node resolves and reads a few
 * files instead of hundreds at every start. The library (dist/index.js) stays tsc's output.
 * Dependencies' CommonJS needs `require`, which an ES module lacks: the banner gives it one.
 */
import { build } from 'esbuild';

await build({
  entryPoints: { main: 'src/cli/main.ts' },
  outdir: 'dist/cli',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Beside main.js: chunks find it as ./main.js (pool.ts starts it detached).
  chunkNames: '[name]-[hash]',
  // Optional natives pg and chokidar probe for; absent, they fall back.
  external: ['pg-native', 'fsevents'],
  banner: { js: "import { createRequire as __dbfastRequire } from 'node:module'; const require = __dbfastRequire(import.meta.url);" },
  logLevel: 'warning',
});
