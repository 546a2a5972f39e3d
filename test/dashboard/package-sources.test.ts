/**
 * 12.8 local vs cached in the dashboard's package list: derived from index records alone.
 * `cache` records are the storage plugin's upstream cache (docs/upstream.md).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { IndexRecord, IndexRecordKind } from '../../plugins/registry-core/index';
import { indexSources, withSources } from '../../plugins/verdaccio-registry-dashboard/package-sources';

const rec = (kind: string, name: string, version = '', time = 1, detail = ''): IndexRecord => ({ kind: kind as IndexRecordKind, name, version, sha512: '', time, detail });

test('12.8 a name with a standing publish is local; one known only from cache records is cached', () => {
  const records = [
    rec('publish', '@mycompany/lib', '1.0.0'),
    rec('cache', 'is-number', '7.0.0', 5),
    rec('cache', 'is-number', '6.0.0', 9),
    rec('cache', 'is-number', '7.0.0', 10),
    rec('publish', 'gone', '1.0.0'),
    rec('unpublish', 'gone', '1.0.0'),
    rec('cache', 'left-pad', '1.3.0'),
    rec('unpublish-package', 'left-pad'),
  ];
  const sources = indexSources(records);
  assert.deepEqual([...sources.local], ['@mycompany/lib']);
  assert.deepEqual([...sources.cached.entries()], [['is-number', { versions: ['7.0.0', '6.0.0'], time: 10 }]]);

  const listed = withSources(
    [{ name: '@mycompany/lib', versions: ['1.0.0'], distTags: { latest: '1.0.0' }, time: '' }],
    sources,
    new Set(['is-number']),
  );
  assert.deepEqual(listed.map((p) => [p.name, p.source, p.versions]), [
    ['@mycompany/lib', 'local', ['1.0.0']],
    ['is-number', 'cached', ['7.0.0', '6.0.0']],
  ]);
  assert.deepEqual(withSources([], sources, new Set()).map((p) => p.name), [], 'a cached name the caller may not read is left out');
});

test('12.8 a local publish wins over cache records of the same name (never shown as cached)', () => {
  const sources = indexSources([rec('cache', 'dual', '1.0.0'), rec('publish', 'dual', '2.0.0')]);
  assert.deepEqual([...sources.local], ['dual']);
  assert.equal(sources.cached.size, 0);
});

test('property: without cache records every listed package is local and nothing is added', () => {
  const kinds = fc.constantFrom('publish', 'unpublish', 'dist-tag', 'deprecate', 'unpublish-package');
  fc.assert(
    fc.property(fc.array(fc.tuple(kinds, fc.constantFrom('a', 'b', '@s/c'), fc.constantFrom('1.0.0', '2.0.0')), { maxLength: 30 }), (rows) => {
      const records = rows.map(([kind, name, version]) => rec(kind, name, version, 1, 'latest'));
      const listed = [...indexSources(records).local].map((name) => ({ name, versions: [], distTags: {}, time: '' }));
      const out = withSources(listed, indexSources(records), new Set(['a', 'b', '@s/c']));
      assert.equal(out.length, listed.length);
      assert.ok(out.every((p) => p.source === 'local'));
    }),
  );
});
