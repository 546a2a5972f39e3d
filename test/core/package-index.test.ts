import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  PackageIndex,
  RegistryCoreError,
  createConfigFile,
  decodeRecordAt,
  defaultFields,
  encodeRecord,
  inspectConfigFile,
  rebuildIndex,
  sha512FromIntegrity,
  summarizeIndex,
  type IndexRecord,
} from '../../plugins/registry-core/index';

const root = mkdtempSync(join(tmpdir(), 'core-index-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

function freshLockb(): string {
  const path = join(root, `registry-${++counter}.lockb`);
  createConfigFile(path, defaultFields());
  return path;
}

const sha = (text: string): string => createHash('sha512').update(text).digest('hex');
const sampleRecords: IndexRecord[] = [
  { kind: 'publish', name: 'left-pad', version: '1.0.0', sha512: sha('a'), time: 1_700_000_000_000, detail: '' },
  { kind: 'dist-tag', name: 'left-pad', version: '1.0.0', sha512: '', time: 1_700_000_000_001, detail: 'latest' },
  { kind: 'publish', name: '@acme/ünïcode', version: '2.0.0-beta.1', sha512: sha('b'), time: 1_700_000_000_002, detail: '' },
  { kind: 'deprecate', name: 'left-pad', version: '1.0.0', sha512: '', time: 1_700_000_000_003, detail: 'use String.prototype.padStart — ✓' },
];

function withRecords(records: IndexRecord[]): string {
  const path = freshLockb();
  const index = PackageIndex.open(path);
  for (const record of records) index.append(record);
  index.close();
  return path;
}

function coreError(code: string, pattern?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof RegistryCoreError, `expected RegistryCoreError ${code}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    return true;
  };
}

test('append then readAll round-trips records (own process and a second handle)', () => {
  const path = freshLockb();
  const writer = PackageIndex.open(path);
  const reader = PackageIndex.open(path);
  assert.equal(writer.recovered, null);
  assert.deepEqual(reader.readAll(), []);
  for (const record of sampleRecords) writer.append(record);
  assert.deepEqual(reader.readAll(), sampleRecords, 'a second handle sees the appends');
  assert.equal(statSync(path).size, 17 + sampleRecords.reduce((n, r) => n + encodeRecord(r).length, 0));
  writer.close();
  reader.close();
  assert.ok(inspectConfigFile(path).ok, 'the header is untouched by appends');
});

test('property: every valid record encodes and decodes to itself', () => {
  const record = fc.record({
    kind: fc.constantFrom('publish', 'unpublish', 'unpublish-package', 'dist-tag', 'dist-tag-rm', 'deprecate', 'self-reference' as const),
    name: fc.string({ minLength: 1, maxLength: 60, unit: 'grapheme' }),
    version: fc.string({ maxLength: 30 }),
    sha512: fc.oneof(fc.constant(''), fc.uint8Array({ minLength: 64, maxLength: 64 }).map((b) => Buffer.from(b).toString('hex'))),
    time: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    detail: fc.string({ maxLength: 200, unit: 'grapheme' }),
  });
  fc.assert(
    fc.property(record, (r) => {
      const bytes = encodeRecord(r);
      const decoded = decodeRecordAt(Buffer.concat([Buffer.alloc(3), bytes]), 3);
      assert.ok(decoded.ok);
      assert.deepEqual(decoded.record, { ...r });
      assert.equal(decoded.next, 3 + bytes.length);
    }),
    { numRuns: 500 },
  );
});

test('invalid records are refused before anything is written', () => {
  const path = freshLockb();
  const index = PackageIndex.open(path);
  const good = sampleRecords[0];
  const bad: [Partial<IndexRecord>, RegExp][] = [
    [{ kind: 'nope' as never }, /unknown kind/],
    [{ name: '' }, /name must not be empty/],
    [{ sha512: 'ABC' }, /sha512/],
    [{ sha512: sha('x').toUpperCase() }, /sha512/],
    [{ time: -1 }, /time/],
    [{ time: 1.5 }, /time/],
    [{ detail: 'x'.repeat(70_000) }, /detail is 70000 bytes/],
  ];
  for (const [patch, pattern] of bad) assert.throws(() => index.append({ ...good, ...patch }), coreError('ERR_INDEX_RECORD', pattern));
  assert.equal(statSync(path).size, 17);
  index.close();
});

test('a torn last record, cut at every byte position, is dropped on open and reported', () => {
  const full = readFileSync(withRecords(sampleRecords));
  const lastLength = encodeRecord(sampleRecords[sampleRecords.length - 1]).length;
  const lastStart = full.length - lastLength;
  for (let cut = lastStart + 1; cut < full.length; cut++) {
    const path = freshLockb();
    writeFileSync(path, full.subarray(0, cut));
    const index = PackageIndex.open(path);
    assert.ok(index.recovered, `cut at ${cut}: recovery reported`);
    assert.equal(index.recovered.droppedBytes, cut - lastStart);
    assert.match(index.recovered.reason, new RegExp(`offset ${lastStart}`));
    assert.deepEqual(index.readAll(), sampleRecords.slice(0, -1));
    assert.equal(statSync(path).size, lastStart, 'truncated away');
    index.append(sampleRecords[3]); // and the index is usable again
    assert.deepEqual(index.readAll(), sampleRecords);
    index.close();
  }
});

test('garbage or a bad CRC at the tail is dropped; a cut exactly at a record boundary loses nothing', () => {
  const full = readFileSync(withRecords(sampleRecords));
  const path = freshLockb();
  writeFileSync(path, Buffer.concat([full, Buffer.alloc(4096)])); // zeros: a crash after the size grew, before data
  const index = PackageIndex.open(path);
  assert.equal(index.recovered?.droppedBytes, 4096);
  assert.deepEqual(index.readAll(), sampleRecords);
  index.close();

  const badCrc = Buffer.from(full);
  badCrc[badCrc.length - 1] ^= 0x01;
  const crcPath = freshLockb();
  writeFileSync(crcPath, badCrc);
  const crcIndex = PackageIndex.open(crcPath);
  assert.match(crcIndex.recovered?.reason ?? '', /CRC-32/);
  assert.deepEqual(crcIndex.readAll(), sampleRecords.slice(0, -1));
  crcIndex.close();

  const boundary = freshLockb();
  writeFileSync(boundary, full.subarray(0, full.length - encodeRecord(sampleRecords[3]).length));
  const clean = PackageIndex.open(boundary);
  assert.equal(clean.recovered, null);
  assert.deepEqual(clean.readAll(), sampleRecords.slice(0, -1));
  clean.close();
});

test('a flipped byte anywhere in a middle record is corruption: ERR_INDEX_CORRUPT, file untouched', () => {
  const full = readFileSync(withRecords(sampleRecords));
  const start = 17 + encodeRecord(sampleRecords[0]).length;
  const length = encodeRecord(sampleRecords[1]).length;
  for (let at = start; at < start + length; at++) {
    for (const mask of [0x01, 0x80, 0xff]) {
      const damaged = Buffer.from(full);
      damaged[at] ^= mask;
      const path = freshLockb();
      writeFileSync(path, damaged);
      assert.throws(
        () => PackageIndex.open(path),
        (error: unknown) =>
          coreError('ERR_INDEX_CORRUPT', /valid record follows/)(error) && /rebuild-index/.test((error as RegistryCoreError).hint ?? ''),
        `flip 0x${mask.toString(16)} at ${at}`,
      );
      assert.deepEqual(readFileSync(path), damaged, 'nothing dropped');
    }
  }
});

test('open refuses a file that is not a registry.lockb', () => {
  const path = join(root, 'not-a-lockb');
  writeFileSync(path, 'hello world, this is not it');
  assert.throws(() => PackageIndex.open(path), coreError('ERR_LOCKB_MAGIC', /expected "BREG"/));
  assert.throws(() => PackageIndex.open(join(root, 'missing.lockb')), coreError('ERR_LOCKB_MISSING'));
});

test('summarizeIndex folds publish/unpublish/dist-tag/deprecate', () => {
  const t = 1_700_000_000_000;
  const records: IndexRecord[] = [
    { kind: 'publish', name: 'b', version: '1.0.0', sha512: '', time: t, detail: '' },
    { kind: 'dist-tag', name: 'b', version: '1.0.0', sha512: '', time: t, detail: 'latest' },
    { kind: 'publish', name: 'b', version: '1.1.0', sha512: '', time: t + 1, detail: '' },
    { kind: 'dist-tag', name: 'b', version: '1.1.0', sha512: '', time: t + 1, detail: 'latest' },
    { kind: 'dist-tag', name: 'b', version: '1.1.0', sha512: '', time: t + 2, detail: 'next' },
    { kind: 'dist-tag-rm', name: 'b', version: '1.1.0', sha512: '', time: t + 3, detail: 'next' },
    { kind: 'publish', name: 'a', version: '0.1.0', sha512: '', time: t + 4, detail: '' },
    { kind: 'publish', name: 'gone', version: '1.0.0', sha512: '', time: t + 5, detail: '' },
    { kind: 'unpublish-package', name: 'gone', version: '', sha512: '', time: t + 6, detail: '' },
    { kind: 'unpublish', name: 'b', version: '1.0.0', sha512: '', time: t + 7, detail: '' },
    { kind: 'deprecate', name: 'a', version: '0.1.0', sha512: '', time: t + 8, detail: 'old' },
    { kind: 'self-reference', name: '@mycompany/registry', version: '0.1.0', sha512: '', time: t + 9, detail: 'http://localhost:4873' },
  ];
  assert.deepEqual(summarizeIndex(records), [
    { name: 'a', versions: ['0.1.0'], distTags: {}, time: new Date(t + 8).toISOString() },
    { name: 'b', versions: ['1.1.0'], distTags: { latest: '1.1.0' }, time: new Date(t + 7).toISOString() },
  ]);
});

function writePackument(storage: string, name: string, packument: unknown): void {
  const dir = join(storage, ...name.split('/'));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify(packument));
}

test('rebuildIndex replaces the records in place from a Verdaccio storage folder', () => {
  const storage = join(root, `storage-${++counter}`);
  const integrity = `sha512-${createHash('sha512').update('tarball').digest('base64')}`;
  writePackument(storage, 'plain', {
    name: 'plain',
    versions: { '1.0.0': { dist: { integrity } }, '1.1.0': { dist: {}, deprecated: 'buggy' } },
    time: { created: '2024-01-01T00:00:00.000Z', modified: '2024-01-03T00:00:00.000Z', '1.0.0': '2024-01-01T00:00:00.000Z', '1.1.0': '2024-01-02T00:00:00.000Z' },
    'dist-tags': { latest: '1.1.0' },
  });
  writePackument(storage, '@scope/pkg', {
    name: '@scope/pkg',
    versions: { '0.0.1': { dist: { integrity: 'sha1-abc sha512-notbase64' } } },
    time: { modified: '2023-06-01T00:00:00.000Z', '0.0.1': '2023-06-01T00:00:00.000Z' },
    'dist-tags': { latest: '0.0.1' },
  });
  writePackument(storage, '.hidden', { name: 'hidden', versions: { '1.0.0': {} } });
  writeFileSync(join(storage, '.verdaccio-db.json'), '{}');
  mkdirSync(join(storage, 'broken'));
  writeFileSync(join(storage, 'broken', 'package.json'), '{not json');

  const path = withRecords(sampleRecords);
  const ino = statSync(path).ino;
  const header = readFileSync(path).subarray(0, 17);
  const result = rebuildIndex(path, storage);
  assert.equal(result.records, 6);
  assert.equal(result.packages, 2);
  assert.equal(result.skipped.length, 1);
  assert.match(result.skipped[0].path, /broken/);
  assert.equal(statSync(path).ino, ino, 'same inode');
  assert.deepEqual(readFileSync(path).subarray(0, 17), header, 'header untouched');

  const index = PackageIndex.open(path);
  assert.equal(index.recovered, null);
  const records = index.readAll();
  index.close();
  assert.deepEqual(
    records.map((r) => `${r.kind} ${r.name}@${r.version} ${r.detail}`),
    [
      'publish @scope/pkg@0.0.1 ',
      'dist-tag @scope/pkg@0.0.1 latest',
      'publish plain@1.0.0 ',
      'publish plain@1.1.0 ',
      'deprecate plain@1.1.0 buggy',
      'dist-tag plain@1.1.0 latest',
    ],
  );
  assert.equal(records[2].sha512, createHash('sha512').update('tarball').digest('hex'));
  assert.equal(records[0].sha512, '', 'an integrity without a valid sha512 gives an empty hash');
  assert.equal(records[2].time, Date.parse('2024-01-01T00:00:00.000Z'));
  assert.deepEqual(summarizeIndex(records).map((p) => [p.name, p.versions, p.distTags]), [
    ['@scope/pkg', ['0.0.1'], { latest: '0.0.1' }],
    ['plain', ['1.0.0', '1.1.0'], { latest: '1.1.0' }],
  ]);
});

test('sha512FromIntegrity decodes only a real sha512', () => {
  const digest = createHash('sha512').update('x').digest();
  assert.equal(sha512FromIntegrity(`sha1-xx sha512-${digest.toString('base64')}`), digest.toString('hex'));
  assert.equal(sha512FromIntegrity('sha512-AAAA'), '');
  assert.equal(sha512FromIntegrity(undefined), '');
});

test('rebuildIndex refuses a missing storage folder and a non-lockb file', () => {
  const path = freshLockb();
  assert.throws(() => rebuildIndex(path, join(root, 'no-such-storage')), coreError('ERR_STORAGE_MISSING'));
  const other = join(root, 'plain.txt');
  writeFileSync(other, 'x'.repeat(40));
  mkdirSync(join(root, 'empty-storage'), { recursive: true });
  assert.throws(() => rebuildIndex(other, join(root, 'empty-storage')), coreError('ERR_LOCKB_MAGIC'));
  assert.equal(readFileSync(other, 'utf8'), 'x'.repeat(40));
});
