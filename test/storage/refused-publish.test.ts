/**
 * A refused publish changes nothing (docs/guarantees.md), deterministically: Verdaccio commits a
 * JSON publish's tarball BEFORE the package lock is taken for its version, so a refusal after
 * that point — here the package lock held by another process past lock_timeout_ms, on a full disk
 * the lock's own mkdir failing with ENOSPC (disk-failures.test.ts) — left a tarball no version
 * names, and the next publish of that version was a 409 "this package is already present" for
 * two minutes. The lock is a real cross-process holder (this test process, a live pid), the
 * registry a real one.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KeyedLock } from '../../plugins/verdaccio-registry-storage/lock';
import { LOCKS_DIR } from '../../plugins/verdaccio-registry-storage/fs-store';
import { addUser, startRegistry, type RunningRegistry } from '../harness/registry';
import { getBytes, getJson, publishRaw, tarballUrl, useOurStorage } from './lib/packages';

const LOCK_TIMEOUT_MS = 1000;

/** Holds the package lock from this process until release() is called. */
async function holdLock(storageDir: string, name: string): Promise<{ release: () => Promise<void> }> {
  const lock = new KeyedLock(join(storageDir, LOCKS_DIR), { timeoutMs: 10_000, staleMs: 60_000 });
  let release!: () => void;
  let taken!: () => void;
  const isTaken = new Promise<void>((resolve) => (taken = resolve));
  const held = lock.withLock(name, () => {
    taken();
    return new Promise<void>((resolve) => (release = resolve));
  });
  await isTaken;
  return {
    release: async () => {
      release();
      await held;
    },
  };
}

/** Bounded poll: the cleanup follows the client's answer (it runs when the response has closed). */
async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i += 1) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.fail(`never: ${what}`);
}

describe('a refused publish leaves nothing behind (tarball committed before the lock)', () => {
  let dir: string;
  let registry: RunningRegistry;
  let token: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'registry-refused-'));
    registry = await startRegistry({
      dir,
      editConfig: (config) => {
        useOurStorage(config);
        config.store = { 'registry-storage': { lock_timeout_ms: LOCK_TIMEOUT_MS } };
      },
    });
    token = await addUser(registry, 'refused-alice', 'refused-password-1');
  });

  after(async () => {
    await registry?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const [label, name, first] of [
    ['an existing package', 'refused-pkg', true],
    ['a new package', 'refused-new', false],
    ['a new scoped package', '@refused/scoped', false],
  ] as const) {
    it(`${label}: the lock times out after the tarball is stored; once the lock is free the tarball is gone and the same publish succeeds`, async () => {
      if (first) assert.equal((await publishRaw(registry.url, token, name, '1.0.0')).status, 201);
      const version = first ? '1.0.1' : '1.0.0';
      const file = join(registry.storageDir, name, `${name.split('/').pop()}-${version}.tgz`);
      const holder = await holdLock(registry.storageDir, name);
      let refused;
      try {
        refused = await publishRaw(registry.url, token, name, version);
      } finally {
        await holder.release();
      }
      assert.equal(refused.status, 503, refused.text);
      assert.match(refused.text, /could not lock/);
      // the cleanup was waiting for the lock: it takes the tarball back
      await eventually(() => !existsSync(file), `${file} removed after the refused publish`);
      const read = await getJson(`${registry.url}/${name.replace('/', '%2f')}`);
      if (first) assert.deepEqual(Object.keys(read.json.versions as object), ['1.0.0']);
      else assert.equal(read.status, 404, JSON.stringify(read.json));
      assert.equal((await getBytes(tarballUrl(registry.url, name, version))).status, 404);
      const again = await publishRaw(registry.url, token, name, version);
      assert.equal(again.status, 201, again.text);
      const bytes = await getBytes(tarballUrl(registry.url, name, version));
      assert.equal(bytes.status, 200);
      assert.ok(bytes.bytes.equals(again.tarball));
    });
  }

  it('the lock is still held when the cleanup gives up too: the next publish of the version reclaims the tarball at once', async () => {
    const name = 'refused-later';
    assert.equal((await publishRaw(registry.url, token, name, '1.0.0')).status, 201);
    const file = join(registry.storageDir, name, `${name}-1.0.1.tgz`);
    const holder = await holdLock(registry.storageDir, name);
    try {
      const refused = await publishRaw(registry.url, token, name, '1.0.1');
      assert.equal(refused.status, 503, refused.text);
      // the cleanup's own wait for the lock ends the same way (bounded poll for its warning)
      await eventually(() => registry.logs().includes(`${name}: could not take back ${name}-1.0.1.tgz`), 'the cleanup gave up');
      assert.ok(existsSync(file), 'the tarball is still there while the lock is held');
    } finally {
      await holder.release();
    }
    const again = await publishRaw(registry.url, token, name, '1.0.1');
    assert.equal(again.status, 201, again.text);
    const read = await getJson(`${registry.url}/${name}`);
    assert.deepEqual(Object.keys(read.json.versions as object).sort(), ['1.0.0', '1.0.1']);
  });
});
