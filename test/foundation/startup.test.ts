import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { NODE_BIN, PROJECT_ROOT, cleanEnv, run, startRegistry, type RunningRegistry } from '../harness/registry';

const SPEC_DEFAULT = '42 52 45 47 01 0a 96 b6 ce 03 00 00 00 02 18 50 36';
const CONFIG_CLI = join(PROJECT_ROOT, 'build', 'scripts', 'config-cli.js');

function headerHex(path: string): string {
  return [...readFileSync(path).subarray(0, 17)].map((byte) => byte.toString(16).padStart(2, '0')).join(' ');
}

describe('start-up', () => {
  const running: RunningRegistry[] = [];
  after(async () => {
    await Promise.all(running.map((registry) => registry.stop()));
  });

  test('first start creates registry.lockb with exactly the documented default bytes and prints a boot timeline', async () => {
    const registry = await startRegistry();
    running.push(registry);
    assert.equal(headerHex(registry.lockbPath), SPEC_DEFAULT);
    const ping = await fetch(`${registry.url}/-/ping`);
    assert.equal(ping.status, 200);
    assert.match(registry.logs(), /\[boot\s+\+\s*[\d.]+ ms\] config loaded: .*valid \(check 0x36\)/);
    assert.match(registry.logs(), /\[boot\s+\+\s*[\d.]+ ms\] listening on http:\/\/127\.0\.0\.1:\d+/);
    assert.match(readFileSync(registry.envFile, 'utf8'), /^BUN_REGISTRY_URL=http:\/\/localhost:4873$/m);
  });

  test('.env.local, then the environment, override the file at start-up and are written into it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'registry-env-'));
    writeFileSync(join(dir, '.env.local'), 'BUN_FEATURE_DEBUG=1\nBUN_TERMINAL_MODE=cooked\nBUN_TERMINAL_ROWS=40\n');
    const registry = await startRegistry({ dir, env: { BUN_TERMINAL_MODE: 'disabled', BUN_REGISTRY_URL: 'https://registry.mycompany.com/' } });
    running.push(registry);
    const bytes = readFileSync(registry.lockbPath);
    assert.equal(bytes.readUInt32LE(5), 0x4469efac, 'registryHash of the env URL');
    assert.equal(bytes.readUInt32LE(9), 0b111, 'DEBUG added to the default flags');
    assert.equal(bytes[13], 0, 'the environment beats .env.local');
    assert.equal(bytes[14], 40);
    assert.match(readFileSync(registry.envFile, 'utf8'), /^BUN_REGISTRY_URL=https:\/\/registry\.mycompany\.com$/m);
    await registry.stop();
    // Written into the file: a restart without the environment keeps what was applied.
    const again = await startRegistry({ dir });
    running.push(again);
    const restarted = readFileSync(again.lockbPath);
    assert.equal(restarted.readUInt32LE(5), 0x4469efac);
  });

  test('a bad magic or check byte stops start-up with a message naming the problem; repair restores the file', async () => {
    const registry = await startRegistry();
    await registry.stop();
    const original = readFileSync(registry.lockbPath);

    const badMagic = Buffer.from(original);
    badMagic.write('XREG', 0, 'latin1');
    writeFileSync(registry.lockbPath, badMagic);
    await assert.rejects(startRegistry({ dir: registry.dir }), (error: Error) => {
      assert.match(error.message, /magic/i);
      assert.match(error.message, /npm run config -- repair/);
      return true;
    });

    const badCheck = Buffer.from(original);
    badCheck[16] ^= 0xff;
    writeFileSync(registry.lockbPath, badCheck);
    await assert.rejects(startRegistry({ dir: registry.dir }), (error: Error) => {
      assert.match(error.message, /check/i);
      assert.match(error.message, /npm run config -- repair/);
      return true;
    });

    const repaired = await run(NODE_BIN, [CONFIG_CLI, '--file', registry.lockbPath, 'repair'], { env: cleanEnv() });
    assert.equal(repaired.code, 0, repaired.stderr);
    assert.deepEqual(readFileSync(registry.lockbPath).subarray(0, 17), original.subarray(0, 17));
    const restarted = await startRegistry({ dir: registry.dir });
    running.push(restarted);
    assert.equal((await fetch(`${restarted.url}/-/ping`)).status, 200);
  });

  test('a configured plugin of ours that fails to load stops start-up', async () => {
    const emptyPlugins = mkdtempSync(join(tmpdir(), 'no-plugins-'));
    await assert.rejects(
      startRegistry({
        editConfig: (config) => {
          config.plugins = emptyPlugins;
          config.middlewares = { 'registry-dashboard': {} };
        },
      }),
      (error: Error) => {
        assert.match(error.message, /did not load/);
        assert.match(error.message, /dashboard/);
        return true;
      },
    );
  });
});
