/**
 * Issue 11.11: `keys/` deleted while the registry runs went unnoticed until the next start
 * generated new keys and thereby invalidated every token. The auth plugin writes the keys it
 * holds back to disk; a key file replaced by another key is reported, never overwritten.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { addUser, startRegistry, type RunningRegistry } from '../harness/registry';
import { KEY_FILE_NAMES, loadKeyRing } from '../../plugins/verdaccio-registry-auth/keys';
import { useAuthPlugin, whoami } from './helpers';

const FILES = KEY_FILE_NAMES;

async function until(condition: () => boolean, what: string, boundMs = 10_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`${what} did not happen within ${boundMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('11.11 keys: keys/ removed while running', () => {
  let registry: RunningRegistry | undefined;
  after(async () => registry?.stop());

  it('11.11 keys: keys/ deleted while running is written back from memory; tokens issued before still verify after a restart', async () => {
    registry = await startRegistry({ editConfig: useAuthPlugin() });
    const keysDir = join(registry.dir, 'keys');
    await until(() => FILES.every((file) => existsSync(join(keysDir, file))), 'both key files exist');
    const before = FILES.map((file) => readFileSync(join(keysDir, file), 'utf8'));
    const token = await addUser(registry, 'keys-alice', 'keys-password-1');
    assert.equal(await whoami(registry, token), 'keys-alice');

    rmSync(keysDir, { recursive: true, force: true });
    await until(() => FILES.every((file) => existsSync(join(keysDir, file))), 'the key files are written back');
    assert.deepEqual(
      FILES.map((file) => readFileSync(join(keysDir, file), 'utf8')),
      before,
      'the very keys the process holds, byte for byte',
    );
    for (const file of FILES) assert.equal(statSync(join(keysDir, file)).mode & 0o777, 0o600, `${file} mode`);
    assert.equal(statSync(keysDir).mode & 0o777, 0o700, 'keys/ mode');
    const running = registry;
    await until(() => /auth keys: .*was removed while running; written back from memory/.test(running.logs()), 'the restore is logged');

    // one file only, too
    rmSync(join(keysDir, FILES[0]));
    await until(() => existsSync(join(keysDir, FILES[0])), 'the single key file is written back');
    assert.equal(readFileSync(join(keysDir, FILES[0]), 'utf8'), before[0]);

    // the proof that matters: after a restart the old token still verifies (same keys)
    registry = await registry.restart({ editConfig: useAuthPlugin() });
    assert.equal(await whoami(registry, token), 'keys-alice', 'a token issued before the deletion verifies after the restart');
  });

  it('11.11 keys: a key file replaced by another key is reported, not overwritten (pure KeyRing check)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyring-'));
    try {
      const ring = loadKeyRing(join(dir, 'keys'));
      assert.deepEqual(ring.checkOnDisk(), [], 'nothing to do while the files are there');
      const other = `${JSON.stringify(generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }))}\n`;
      const file = join(dir, 'keys', FILES[0]);
      rmSync(file);
      writeFileSync(file, other, { mode: 0o600 });
      const events = ring.checkOnDisk();
      assert.equal(events.length, 1);
      assert.equal(events[0].kind, 'conflict');
      assert.match(events[0].message, /now holds another EdDSA key/);
      assert.equal(readFileSync(file, 'utf8'), other, 'an operator-placed key is left as it is');
      assert.deepEqual(ring.checkOnDisk(), [], 'reported once, not on every check');
      rmSync(file);
      const restored = ring.checkOnDisk();
      assert.equal(restored.length, 1);
      assert.equal(restored[0].kind, 'restored');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
