import { mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { rootCertificates } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config/index.js';
import { withClient } from '../../src/core/pg/client.js';
import { configuredTarget } from '../../src/core/pg/target.js';
import { testRemote } from '../../src/core/remote.js';
import { startTlsServer, type TlsServer } from '../helpers/tls-server.js';

let server: TlsServer;
let root: string;

beforeAll(async () => {
  server = await startTlsServer();
  root = await realpath(await mkdtemp(path.join(os.tmpdir(), 'dbfast-tls-')));
}, 60_000);

afterAll(async () => {
  await server?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

/** Connects to the TLS server as [remotes.r] with `keys`; says whether the session is encrypted, or why it failed. */
async function connectWith(keys: string, url = `postgresql://postgres@127.0.0.1:${server.port}/postgres`) {
  await writeFile(path.join(root, 'dbfast.toml'), `[remotes.r]\nurl = "${url}"\n${keys}\n`);
  const config = await loadConfig({ cwd: root, env: {} });
  const target = await configuredTarget(config.remotes.r!, config, {});
  return withClient(target, async (client) => {
    const rows = (await client.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows;
    return rows[0]?.ssl ? 'encrypted' : 'plain';
  }).catch((error: Error) => `failed: ${error.message}`);
}

describe('TLS to a configured server', () => {
  it('sslmode = "require" encrypts without checking the certificate', async () => {
    expect(await connectWith('sslmode = "require"')).toBe('encrypted');
  });

  it('no sslmode connects in plain text', async () => {
    expect(await connectWith('')).toBe('plain');
  });

  it('verify-ca accepts a certificate the given CA signed, whatever name it carries', async () => {
    expect(await connectWith(`sslmode = "verify-ca"\nsslrootcert = "${server.caFile}"`)).toBe('encrypted');
  });

  it('verify-ca refuses the certificate without the CA that signed it', async () => {
    expect(await connectWith('sslmode = "verify-ca"')).toMatch(/^failed: .*(self[- ]signed|unable to verify|certificate)/i);
  });

  it('verify-full refuses a certificate that does not name the host', async () => {
    expect(await connectWith(`sslmode = "verify-full"\nsslrootcert = "${server.caFile}"`)).toMatch(/^failed: .*(127\.0\.0\.1|altnames|hostname)/i);
  });

  it('require with a CA file checks the certificate against it, as libpq does', async () => {
    // A real CA, but not the one that signed the server's certificate.
    await writeFile(path.join(root, 'other-ca.crt'), rootCertificates[0]!);
    expect(await connectWith('sslmode = "require"\nsslrootcert = "other-ca.crt"')).toMatch(/^failed: .*(unable to verify|self[- ]signed|certificate)/i);
    expect(await connectWith(`sslmode = "require"\nsslrootcert = "${server.caFile}"`)).toBe('encrypted');
  });

  it('the keys win over the URL, and a relative certificate path is relative to dbfast.toml', async () => {
    await writeFile(path.join(root, 'ca.crt'), await readFile(server.caFile));
    const url = `postgresql://postgres@127.0.0.1:${server.port}/postgres?sslmode=disable`;
    expect(await connectWith('sslmode = "verify-ca"\nsslrootcert = "ca.crt"', url)).toBe('encrypted');
  });

  it('sslmode and sslrootcert in the URL work too', async () => {
    const url = `postgresql://postgres@127.0.0.1:${server.port}/postgres?sslmode=verify-ca&sslrootcert=${encodeURIComponent(server.caFile)}`;
    expect(await connectWith('', url)).toBe('encrypted');
  });

  it('remote test reports a TLS failure as such, with a hint at sslmode and sslrootcert', async () => {
    await writeFile(path.join(root, 'dbfast.toml'), `[remotes.r]\nurl = "postgresql://postgres@127.0.0.1:${server.port}/postgres"\nsslmode = "verify-ca"\n`);
    const config = await loadConfig({ cwd: root, env: {} });
    const result = await testRemote(config, 'r', { env: { PATH: process.env.PATH }, attempts: 1 });
    expect(result.checks).toEqual([
      { check: 'reachable', ok: false, message: expect.stringMatching(new RegExp(`^TLS with 127\\.0\\.0\\.1:${server.port} failed: `)), hint: 'check sslmode and sslrootcert in [remotes.r]' },
    ]);
  });

  it('an unreadable certificate file is a configuration error naming the key and the path', async () => {
    await writeFile(path.join(root, 'dbfast.toml'), '[remotes.r]\nhost = "h"\nsslmode = "verify-ca"\nsslrootcert = "missing.crt"\n');
    const config = await loadConfig({ cwd: root, env: {} });
    await expect(configuredTarget(config.remotes.r!, config, {})).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: `remotes.r.sslrootcert cannot be read: ${path.join(root, 'missing.crt')}`,
    });
  });

  it('an unknown sslmode key is refused at load time', async () => {
    await writeFile(path.join(root, 'dbfast.toml'), '[remotes.r]\nsslmode = "always"\n');
    await expect(loadConfig({ cwd: root, env: {} })).rejects.toMatchObject({
      message: 'remotes.r.sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full',
    });
  });
});
