/**
 * The `version` byte: 0 = legacy (what follows the header is not this registry's index), migrated
 * to 1 on open by regenerating the index from storage (docs/config-format.md, "version byte").
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  CURRENT_FORMAT_VERSION,
  PackageIndex,
  collectIndexRecords,
  createConfigFile,
  defaultFields,
  encodeHeader,
  inspectConfigFile,
  migrateLegacyFormat,
} from '../../plugins/registry-core/index';

const root = mkdtempSync(join(tmpdir(), 'core-format-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

function storageWithPackage(): string {
  const storage = join(root, `storage-${++counter}`);
  const integrity = `sha512-${createHash('sha512').update('tarball').digest('base64')}`;
  mkdirSync(join(storage, '@acme', 'lib'), { recursive: true });
  writeFileSync(
    join(storage, '@acme', 'lib', 'package.json'),
    JSON.stringify({
      name: '@acme/lib',
      versions: { '1.0.0': { dist: { integrity } } },
      time: { created: '2024-01-01T00:00:00.000Z', modified: '2024-01-01T00:00:00.000Z', '1.0.0': '2024-01-01T00:00:00.000Z' },
      'dist-tags': { latest: '1.0.0' },
    }),
  );
  return storage;
}

/** The 17-byte config-only file of the original tool, version 0, plus whatever it had after it. */
function legacyFile(after: Buffer): string {
  const path = join(root, `legacy-${++counter}.lockb`);
  writeFileSync(path, Buffer.concat([encodeHeader({ ...defaultFields(), version: 0 }), after]));
  return path;
}

test('15.2 version byte 0: the index is regenerated from storage and the version becomes 1, same inode', () => {
  const storage = storageWithPackage();
  // bytes no index record decodes (another tool's data): with version 1 this file would be refused or truncated
  const path = legacyFile(Buffer.from('legacy tool data, not records\n'));
  const ino = statSync(path).ino;
  const migration = migrateLegacyFormat(path, storage);
  assert.ok(migration);
  assert.equal(migration.from, 0);
  assert.equal(migration.to, CURRENT_FORMAT_VERSION);
  assert.equal(migration.replacedBytes, 30);
  assert.equal(migration.packages, 1);
  const inspected = inspectConfigFile(path);
  assert.ok(inspected.ok);
  assert.equal(inspected.fields.version, 1);
  assert.deepEqual({ ...inspected.fields, version: 0 }, { ...defaultFields(), version: 0 });
  const index = PackageIndex.open(path);
  try {
    assert.equal(index.recovered, null);
    assert.deepEqual(index.readAll(), collectIndexRecords(storage).records);
    assert.equal(migration.records, index.readAll().length);
  } finally {
    index.close();
  }
  assert.equal(statSync(path).ino, ino);
  // migrated once: a second open changes nothing
  const bytes = readFileSync(path);
  assert.equal(migrateLegacyFormat(path, storage), null);
  assert.deepEqual(readFileSync(path), bytes);
});

test('15.2 version byte 1: never migrated, every byte stays', () => {
  const storage = storageWithPackage();
  const path = join(root, `modern-${++counter}.lockb`);
  createConfigFile(path, defaultFields());
  appendFileSync(path, Buffer.alloc(0));
  const before = readFileSync(path);
  assert.equal(migrateLegacyFormat(path, storage), null);
  assert.deepEqual(readFileSync(path), before);
});

test('15.2 version byte 0 without a storage folder: an empty index', () => {
  const path = legacyFile(Buffer.from([1, 2, 3]));
  const migration = migrateLegacyFormat(path, join(root, 'no-such-storage'));
  assert.equal(migration?.records, 0);
  assert.equal(statSync(path).size, 17);
  assert.equal(readFileSync(path)[4], 1);
});

test('15.2 version byte 0 with a bad check byte: refused, nothing written', () => {
  const path = legacyFile(Buffer.alloc(0));
  const bytes = readFileSync(path);
  bytes[16] ^= 0xff;
  writeFileSync(path, bytes);
  assert.throws(() => migrateLegacyFormat(path, storageWithPackage()), /check/i);
  assert.deepEqual(readFileSync(path), bytes);
});
