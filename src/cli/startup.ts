/**
 * Imported first by the CLI, before anything else is loaded. Two start-up costs a one-shot
 * process should not pay:
 * - On Node 22+, compiled code is cached on disk (`module.enableCompileCache`), so later runs skip
 *   compiling the CLI and its dependencies.
 * - On Node 20, which has no `navigator`, `pg` probes `typeof Response` to detect Cloudflare
 *   Workers, which makes Node load its whole `fetch` implementation (undici, and TLS with it). Node
 *   21+ defines `navigator` with this user agent, and `pg` then stops there: the same is given here.
 */
import module from 'node:module';

(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();

if (!('navigator' in globalThis)) {
  Object.defineProperty(globalThis, 'navigator', {
    value: { userAgent: `Node.js/${process.versions.node.split('.')[0]}` },
    configurable: true,
    writable: true,
  });
}
