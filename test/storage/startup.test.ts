/**
 * The storage plugin either comes up fully or stops start-up with a message that names the
 * problem (Verdaccio alone would log it and serve with its default storage).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startRegistry } from '../harness/registry';
import { useOurStorage } from './lib/packages';

async function startFailure(prepare: (dir: string) => void): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'storage-startup-'));
  prepare(dir);
  try {
    const registry = await startRegistry({ dir, editConfig: useOurStorage, timeoutMs: 20_000 });
    await registry.stop();
  } catch (error) {
    return String(error);
  }
  assert.fail('the registry started although its storage is unusable');
}

test('storage path is a file: start-up fails and names the storage part', async () => {
  const output = await startFailure((dir) => writeFileSync(join(dir, 'storage'), 'not a folder'));
  assert.match(output, /storage/);
  assert.match(output, /did not load|EEXIST|ENOTDIR|not a directory/i);
});

test('a corrupt .verdaccio-db.json stops start-up and is left untouched for the operator', async () => {
  let dbPath = '';
  const output = await startFailure((dir) => {
    mkdirSync(join(dir, 'storage'));
    dbPath = join(dir, 'storage', '.verdaccio-db.json');
    writeFileSync(dbPath, '{"list": ["a"');
  });
  assert.match(output, /\.verdaccio-db\.json is not valid JSON/);
  assert.equal(readFileSync(dbPath, 'utf8'), '{"list": ["a"');
});
