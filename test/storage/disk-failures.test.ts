/**
 * Issue 11.7 (locks on failure) and 11.11 (no server paths in error bodies) against a real
 * registry whose storage folder is a tiny tmpfs: a full disk, a read-only disk, a name the file
 * system cannot hold. Every failure is a clear JSON error without a path of the server, nothing is
 * left locked, and the next publish works at once.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { addUser, startRegistry, type RunningRegistry } from '../harness/registry';
import { getJson, publishRaw, useOurStorage } from './lib/packages';

/** Why tmpfs cannot be mounted here (not root, no CAP_SYS_ADMIN in a container…), or null when it can. */
function tmpfsUnavailable(): string | null {
  if (process.platform !== 'linux') return `tmpfs mounts need Linux (this is ${process.platform})`;
  const probe = mkdtempSync(join(tmpdir(), 'tmpfs-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'pipe' });
    execFileSync('umount', [probe], { stdio: 'pipe' });
    return null;
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    return `cannot mount a tmpfs (${stderr || (error as Error).message}); run as root with mount permission`;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

const skipReason = tmpfsUnavailable();
if (skipReason) console.log(`# 11.7 / 11.11 disk tests skipped: ${skipReason}`);

/** Writes a filler file until the file system is full; returns its path. */
function fillUp(dir: string): string {
  const path = join(dir, 'filler.bin');
  const fd = openSync(path, 'w');
  const block = Buffer.alloc(64 * 1024, 1);
  try {
    for (let i = 0; i < 10_000; i += 1) writeSync(fd, block);
    assert.fail('the 2 MB tmpfs never filled up');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
  // the last partial pages too
  const tail = openSync(path, 'a');
  try {
    for (let i = 0; i < 1000; i += 1) writeSync(tail, Buffer.alloc(512, 1));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(tail);
  }
  return path;
}

/** The error body of a failed request, checked to be JSON `{error}` naming no path of the server. */
function assertCleanError(text: string, serverDirs: string[], label: string): string {
  let body: { error?: unknown };
  try {
    body = JSON.parse(text) as { error?: unknown };
  } catch {
    assert.fail(`${label}: not JSON: ${text.slice(0, 300)}`);
  }
  assert.equal(typeof body.error, 'string', `${label}: ${text}`);
  const error = body.error as string;
  for (const dir of serverDirs) assert.ok(!error.includes(dir), `${label}: the error names a server path: ${error}`);
  assert.doesNotMatch(error, /(?:^|[\s'"(])\/(?:tmp|home|root|var|work|usr)\//, `${label}: the error names a server path: ${error}`);
  assert.doesNotMatch(error, /\bE[A-Z]{3,}: /, `${label}: a raw errno message: ${error}`);
  return error;
}

describe('11.7 / 11.11 storage on a tiny tmpfs', { skip: skipReason ?? false }, () => {
  let dir: string;
  let storage: string;
  let registry: RunningRegistry;
  let token: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'registry-tmpfs-'));
    storage = join(dir, 'storage');
    mkdirSync(storage);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', storage]);
    registry = await startRegistry({
      dir,
      editConfig: (config) => {
        useOurStorage(config);
        // a lock left behind shows as a 503 after this long (instead of 30 s)
        config.store = { 'registry-storage': { lock_timeout_ms: 3000 } };
      },
    });
    token = await addUser(registry, 'disk-alice', 'disk-password-1');
  });

  after(async () => {
    await registry?.stop();
    if (storage) {
      try {
        execFileSync('umount', [storage]);
      } catch {
        execFileSync('umount', ['-l', storage]);
      }
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // Was about one run in three a 409 "already present" on the retry (issue 18): when the full disk
  // still took the tarball, the package lock's own mkdir then failed with ENOSPC, and the committed
  // tarball stayed. The refused publish's cleanup (PackageService.publishFailed) takes it back, or
  // the retry reclaims it at once; refused-publish.test.ts covers that every run, without tmpfs.
  it('11.7 locks: after ENOSPC the package is not left locked; freeing space makes the next publish of it succeed at once', async () => {
    // a package that exists already (its next version is the read-modify-write under the lock)
    const first = await publishRaw(registry.url, token, 'disk-pkg', '1.0.0');
    assert.equal(first.status, 201, first.text);
    const filler = fillUp(storage);
    const refused: string[] = [];
    for (const [name, version] of [
      ['disk-pkg', '1.0.1'],
      ['disk-new', '1.0.0'],
      ['@disk/scoped', '1.0.0'],
    ]) {
      const answer = await publishRaw(registry.url, token, name, version, {
        tarball: undefined,
        extra: { description: 'x'.repeat(64 * 1024) }, // larger than any space left
      });
      assert.ok(answer.status >= 500, `${name}@${version} on a full disk: ${answer.status} ${answer.text}`);
      refused.push(`${name}: ${answer.status}`);
      const error = assertCleanError(answer.text, [dir, storage], `${name}@${version} on a full disk`);
      assert.equal(answer.status, 507, `${name}: ${error}`);
      assert.match(error, /storage is full/i);
    }
    // a change without a tarball takes the package lock on the full disk (dist-tag, deprecate)
    const tagOnFull = await fetch(`${registry.url}/-/package/disk-pkg/dist-tags/beta`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify('1.0.0'),
    });
    const tagText = await tagOnFull.text();
    assert.ok(tagOnFull.status >= 500, `dist-tag on a full disk: ${tagOnFull.status} ${tagText}`);
    assertCleanError(tagText, [dir, storage], 'dist-tag on a full disk');
    rmSync(filler);
    const tagAgain = await fetch(`${registry.url}/-/package/disk-pkg/dist-tags/beta`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify('1.0.0'),
    });
    assert.equal(tagAgain.status, 201, `dist-tag after freeing space: ${tagAgain.status} ${await tagAgain.text()}`);
    // at once: no lock left behind (that would be a 503 after lock_timeout_ms), no half-made package
    for (const [name, version] of [
      ['disk-pkg', '1.0.1'],
      ['disk-new', '1.0.0'],
      ['@disk/scoped', '1.0.0'],
    ]) {
      const again = await publishRaw(registry.url, token, name, version);
      assert.equal(again.status, 201, `${name}@${version} after freeing space (${refused.join(', ')}): ${again.status} ${again.text}`);
    }
    const packument = await getJson(`${registry.url}/disk-pkg`);
    assert.deepEqual(Object.keys(packument.json.versions as object).sort(), ['1.0.0', '1.0.1']);
  });

  it('11.11 leaks: a read-only storage (EROFS) answers a clear 503 without a path, and works again once writable', async () => {
    execFileSync('mount', ['-o', 'remount,ro', storage]);
    try {
      for (const [name, version] of [
        ['disk-pkg', '1.0.2'],
        ['disk-ro-new', '1.0.0'],
      ]) {
        const answer = await publishRaw(registry.url, token, name, version);
        const error = assertCleanError(answer.text, [dir, storage], `${name}@${version} on a read-only disk`);
        assert.equal(answer.status, 503, `${name}: ${error}\n${registry.logs().slice(-3000)}`);
        assert.match(error, /read-only/i);
      }
      // reads still work
      const read = await getJson(`${registry.url}/disk-pkg`);
      assert.equal(read.status, 200);
    } finally {
      execFileSync('mount', ['-o', 'remount,rw', storage]);
    }
    const again = await publishRaw(registry.url, token, 'disk-pkg', '1.0.2');
    assert.equal(again.status, 201, again.text);
  });

  it('11.11 leaks: a name the file system cannot hold (ENAMETOOLONG) is a 4xx without a path', async () => {
    // 211-character scope name + a long (valid) prerelease: the tarball's file name passes 255 bytes
    const name = `@disk/${'n'.repeat(208)}`;
    const version = `1.0.0-${'a'.repeat(60)}`;
    const answer = await publishRaw(registry.url, token, name, version);
    const error = assertCleanError(answer.text, [dir, storage], 'ENAMETOOLONG publish');
    assert.ok(answer.status >= 400 && answer.status < 500, `${answer.status}: ${error}`);
    // nothing left behind, nothing locked: a normal publish works
    const ok = await publishRaw(registry.url, token, 'disk-after-long', '1.0.0');
    assert.equal(ok.status, 201, ok.text);
  });
});
