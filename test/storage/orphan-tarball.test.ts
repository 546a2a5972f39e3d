/**
 * A tarball a local publish left without completing (no local packument: interrupted before its
 * version) is never served, and never preferred to the upstream's copy in the cache, whose bytes
 * the cache fill verified against the upstream's integrity — on the fast path and on the full path
 * (`fast_path: false`) alike. Before, the fast path answered the cached upstream bytes by its
 * `upstream:` stamp while the full path read the local store first and answered the leftover.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UPSTREAM_CACHE_DIR } from '../../plugins/verdaccio-registry-storage/plugin';
import { addUser, startRegistry, type RunningRegistry } from '../harness/registry';
import { getBytes, makeTarball, publishRaw, tarballUrl } from './lib/packages';

const NAME = 'orphan-shadowed';
const VERSION = '1.0.0';
const FILE = `${NAME}-${VERSION}.tgz`;

const sha512 = (bytes: Buffer): string => createHash('sha512').update(bytes).digest('hex');

async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100; i += 1) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`never: ${what}`);
}

describe('a local tarball without its publish completed is never served over the upstream copy', () => {
  let upstream: RunningRegistry;
  let dir: string;
  let upstreamBytes: Buffer;
  const running: RunningRegistry[] = [];

  const startOurs = async (fastPath: boolean): Promise<RunningRegistry> => {
    const ours = await startRegistry({
      dir,
      editConfig: (config) => {
        config.uplinks = { upstream: { url: upstream.url, maxage: '10m', timeout: '3s' } };
        if (!fastPath) config.middlewares = { ...(config.middlewares as Record<string, unknown>), 'registry-storage-http': { fast_path: false } };
      },
    });
    running.push(ours);
    return ours;
  };

  before(async () => {
    upstream = await startRegistry();
    const token = await addUser(upstream, 'orphan-publisher', 'orphan-password-1');
    upstreamBytes = makeTarball(NAME, VERSION);
    const published = await publishRaw(upstream.url, token, NAME, VERSION, { tarball: upstreamBytes });
    assert.equal(published.status, 201, published.text);
    dir = mkdtempSync(join(tmpdir(), 'registry-orphan-'));
  });

  after(async () => {
    for (const registry of running) await registry.stop();
    await upstream?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('fast path on, then off: the cached upstream bytes, never the leftover', async () => {
    const ours = await startOurs(true);
    // fill the upstream cache (packument, then the tarball: verified against the upstream's integrity)
    const first = await getBytes(tarballUrl(ours.url, NAME, VERSION));
    assert.equal(first.status, 200);
    assert.equal(sha512(first.bytes), sha512(upstreamBytes));
    const cached = join(ours.storageDir, UPSTREAM_CACHE_DIR, NAME, FILE);
    await eventually(() => existsSync(cached), 'the cache fill committed the tarball');

    // what a local publish of the same name leaves when it is interrupted after its tarball: the
    // committed file, no package.json (other bytes: a different package under the same name)
    const leftover = makeTarball(NAME, VERSION, { 'index.js': 'module.exports = "local, never published";\n' });
    assert.notEqual(sha512(leftover), sha512(upstreamBytes));
    mkdirSync(join(ours.storageDir, NAME), { recursive: true });
    writeFileSync(join(ours.storageDir, NAME, FILE), leftover);

    // several reads: the fast path answers once the cache's packument stamp is settled
    for (let i = 0; i < 4; i += 1) {
      const read = await getBytes(tarballUrl(ours.url, NAME, VERSION));
      assert.equal(read.status, 200, `read ${i} (fast path on)`);
      assert.equal(sha512(read.bytes), sha512(upstreamBytes), `read ${i} (fast path on) answered the leftover`);
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    await ours.stop();

    const full = await startOurs(false);
    assert.match(full.logs(), /fast path off/);
    for (let i = 0; i < 2; i += 1) {
      const read = await getBytes(tarballUrl(full.url, NAME, VERSION));
      assert.equal(read.status, 200, `read ${i} (fast path off)`);
      assert.equal(sha512(read.bytes), sha512(upstreamBytes), `read ${i} (fast path off) answered the leftover`);
    }
  });
});
