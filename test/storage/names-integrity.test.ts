import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { resolve, sep } from 'node:path';
import fc from 'fast-check';
import { StorageError } from '../../plugins/verdaccio-registry-storage/errors';
import { insideRoot, packageDirOf, parsePackageName, parseTarballName } from '../../plugins/verdaccio-registry-storage/names';
import { sha512HexOf, verifyDist } from '../../plugins/verdaccio-registry-storage/integrity';
import { diffSnapshots, recordsFor, snapshotOf } from '../../plugins/verdaccio-registry-storage/changes';
import type { Manifest } from '../../plugins/verdaccio-registry-storage/store';

const ROOT = resolve('/srv/storage');
const isBadName = (error: unknown): boolean => error instanceof StorageError && error.code === 'ERR_BAD_NAME' && error.status === 400;

test('package names: npm rules, scoped names, and every traversal form refused', () => {
  for (const ok of ['a', 'lodash', 'my-pkg.js', '@scope/name', '@my-co/x_y', 'a~b', '-leading-dash']) {
    assert.equal(parsePackageName(ok).name, ok);
  }
  const bad = [
    '', '.', '..', '../x', 'x/..', '@scope/..', '@scope/../../etc', '@scope/a/b', 'a/b', '/abs', '.hidden', '_private',
    'UpperCase', 'has space', 'tab\t', 'nul\u0000', 'a\\b', '@/x', '@scope/', '@.scope/x', '%2e%2e', 'node_modules', '__proto__',
    'a'.repeat(215), 'é', '@scope/.x',
  ];
  for (const name of bad) assert.throws(() => parsePackageName(name), isBadName, `accepted ${JSON.stringify(name)}`);
  // adopted legacy packages may be read with uppercase, never with path tricks
  assert.equal(parsePackageName('JSONStream', 'read').bare, 'JSONStream');
  assert.throws(() => parsePackageName('../JSONStream', 'read'), isBadName);
});

test('property: any string either fails validation or maps to a folder strictly inside the storage root', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.stringMatching(/^[@./a-z\\%-]{0,12}$/)), (name) => {
      let dir: string;
      try {
        dir = packageDirOf(ROOT, parsePackageName(name, 'read'));
      } catch (error) {
        assert.ok(isBadName(error));
        return;
      }
      assert.ok(dir.startsWith(ROOT + sep) && dir !== ROOT, `${name} → ${dir}`);
    }),
    { numRuns: 3000 },
  );
});

test('tarball names: only <unscoped-name>-<semver>.tgz', () => {
  const pkg = parsePackageName('@scope/lib');
  assert.deepEqual(parseTarballName(pkg, 'lib-1.2.3.tgz'), { fileName: 'lib-1.2.3.tgz', version: '1.2.3' });
  assert.equal(parseTarballName(pkg, 'lib-1.0.0-beta.1+build.5.tgz').version, '1.0.0-beta.1+build.5');
  for (const bad of ['../lib-1.0.0.tgz', 'lib-1.0.0.tgz/..', 'other-1.0.0.tgz', 'lib-1.0.tgz', 'lib-v1.0.0.tgz', '.tmp-1-ab-lib-1.0.0.tgz', 'lib-1.0.0.tar', 'package.json', 'lib-1.0.0.tgz\u0000']) {
    assert.throws(() => parseTarballName(pkg, bad), isBadName, `accepted ${bad}`);
  }
  assert.throws(() => insideRoot(ROOT, '..', 'etc'), isBadName);
  assert.throws(() => insideRoot(ROOT, '.'), isBadName);
});

test('verifyDist: sha512 integrity and sha1 shasum recomputed against the stored bytes', () => {
  const bytes = Buffer.from('pretend this is a tarball');
  const digest = {
    sha512: createHash('sha512').update(bytes).digest('hex'),
    sha1: createHash('sha1').update(bytes).digest('hex'),
    size: bytes.length,
  };
  const integrity = `sha512-${createHash('sha512').update(bytes).digest('base64')}`;
  verifyDist('x@1.0.0', { integrity, shasum: digest.sha1 }, digest);
  verifyDist('x@1.0.0', { integrity }, digest);
  verifyDist('x@1.0.0', { shasum: digest.sha1.toUpperCase() }, digest);
  const isIntegrity = (error: unknown): boolean => error instanceof StorageError && error.code === 'ERR_INTEGRITY' && error.status === 400;
  const other = `sha512-${createHash('sha512').update('other').digest('base64')}`;
  assert.throws(() => verifyDist('x@1.0.0', { integrity: other, shasum: digest.sha1 }, digest), isIntegrity);
  assert.throws(() => verifyDist('x@1.0.0', { integrity, shasum: '0'.repeat(40) }, digest), isIntegrity);
  assert.throws(() => verifyDist('x@1.0.0', {}, digest), isIntegrity);
  assert.throws(() => verifyDist('x@1.0.0', { integrity: 'sha256-abc' }, digest), isIntegrity);
  assert.equal(sha512HexOf({ integrity }), digest.sha512);
});

test('integrity text ssri cannot read (it returns null, or names a prototype member) is a 400, never a TypeError', () => {
  const bytes = Buffer.from('pretend this is a tarball');
  const digest = { sha512: createHash('sha512').update(bytes).digest('hex'), sha1: createHash('sha1').update(bytes).digest('hex'), size: bytes.length };
  const isIntegrity = (error: unknown): boolean => error instanceof StorageError && error.code === 'ERR_INTEGRITY' && error.status === 400;
  for (const integrity of ['__proto__', 'constructor', 'toString-abc', 'x', 'sha512-', '   ']) {
    assert.throws(() => verifyDist('x@1.0.0', { integrity }, digest), isIntegrity, integrity);
    assert.equal(sha512HexOf({ integrity }), '', integrity);
  }
  fc.assert(
    fc.property(fc.string(), (integrity) => {
      assert.equal(typeof sha512HexOf({ integrity }), 'string');
      try {
        verifyDist('x@1.0.0', { integrity, shasum: digest.sha1 }, digest);
      } catch (error) {
        assert.ok(isIntegrity(error), String(error));
      }
    }),
  );
});

test('index records from a manifest diff: publish, tag set/remove, deprecate, unpublish', () => {
  const v = (version: string, extra: Record<string, unknown> = {}) => ({ name: 'p', version, dist: { tarball: `x/p-${version}.tgz` }, ...extra });
  const before: Manifest = { name: 'p', versions: { '1.0.0': v('1.0.0'), '1.1.0': v('1.1.0') }, 'dist-tags': { latest: '1.1.0', beta: '1.1.0' } };
  const after: Manifest = {
    name: 'p',
    versions: { '1.0.0': v('1.0.0', { deprecated: 'use 2' }), '2.0.0': v('2.0.0') },
    'dist-tags': { latest: '2.0.0', next: '2.0.0' },
  };
  const changes = diffSnapshots(snapshotOf(before), snapshotOf(after));
  const records = recordsFor('p', changes, new Map([['2.0.0', 'ab'.repeat(64)]]), 7);
  assert.deepEqual(
    records.map((r) => `${r.kind} ${r.version} ${r.detail}`),
    ['publish 2.0.0 ', 'deprecate 1.0.0 use 2', 'dist-tag 2.0.0 latest', 'dist-tag 2.0.0 next', 'dist-tag-rm 1.1.0 beta', 'unpublish 1.1.0 '],
  );
  assert.equal(records[0].sha512, 'ab'.repeat(64));
  assert.ok(records.every((r) => r.time === 7 && r.name === 'p'));
  assert.deepEqual(recordsFor('p', diffSnapshots(snapshotOf(before), snapshotOf(before)), new Map(), 1), []);
});
