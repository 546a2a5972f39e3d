/**
 * Pure parts of issues 11.1 / 11.8 / 11.9: the version rule, owners, the owner-change body, the
 * DELETE route matcher and the index fold (unit + fast-check properties).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import semver from 'semver';
import { foldIndex, type IndexRecord } from '../../plugins/registry-core/index';
import { matchDeletePath } from '../../plugins/verdaccio-registry-storage/http/route-match';
import { checkPublishBody } from '../../plugins/verdaccio-registry-storage/http/publish-guard';
import { isValidVersion, versionProblem } from '../../plugins/verdaccio-registry-storage/names';
import { actorOf, maintainersOf, ownershipProblem, parseOwnersBody } from '../../plugins/verdaccio-registry-storage/owners';
import { attachIntent, takeIntent } from '../../plugins/verdaccio-registry-storage/publish-intent';

test('11.1 isValidVersion is exactly "semver.valid(v) === v"; versionProblem explains every refusal', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 20 }), fc.tuple(fc.nat(99), fc.nat(99), fc.nat(99), fc.constantFrom('', '-rc.1', '+b', '-0+x', '-01')).map(([a, b, c, s]) => `${a}.${b}.${c}${s}`)), (v) => {
      assert.equal(isValidVersion(v), semver.valid(v) === v);
      assert.equal(versionProblem(v) === null, isValidVersion(v));
      if (semver.parse(v)?.build.length) assert.match(versionProblem(v)!, /build metadata/);
    }),
  );
  assert.match(versionProblem('1.0.1+b')!, /publish "1\.0\.1"/);
  assert.match(versionProblem('v1.0.0')!, /canonical.*"1\.0\.0"/);
});

test('11.1 the guard refuses a build-metadata publish body with the reason', () => {
  const body = { _id: 'x', name: 'x', versions: { '1.0.1+b': { name: 'x', version: '1.0.1+b', dist: { tarball: 'http://h/x/-/x-1.0.1+b.tgz', shasum: 'a'.repeat(40) } } }, _attachments: { 'x-1.0.1+b.tgz': { data: 'H4sI' } } };
  const verdict = checkPublishBody('x', false, body);
  assert.equal(verdict.ok, false);
  assert.match((verdict as { error: string }).error, /build metadata/);
});

test('11.8 ownershipProblem: owners and admins may, others and anonymous may not; no maintainers = stock rules', () => {
  const owners = [{ name: 'alice' }, { name: 'bob' }];
  assert.equal(ownershipProblem('p', owners, { name: 'alice', admin: false }, 'x'), null);
  assert.equal(ownershipProblem('p', owners, { name: 'root', admin: true }, 'x'), null);
  assert.match(ownershipProblem('p', owners, { name: 'eve', admin: false }, 'unpublish')!, /user "eve" may not unpublish p: only its maintainers \(alice, bob\)/);
  assert.match(ownershipProblem('p', owners, { name: null, admin: false }, 'x')!, /anonymous/);
  assert.equal(ownershipProblem('p', [], { name: 'eve', admin: false }, 'x'), null);
  assert.deepEqual(actorOf({ name: 'root', groups: ['root', 'registry-admin'] }), { name: 'root', admin: true });
  assert.deepEqual(actorOf({ name: undefined, groups: ['registry-admin'] }), { name: null, admin: false }, 'an anonymous user is never an admin');
  assert.deepEqual(actorOf(null), { name: null, admin: false });
});

test('11.8 maintainersOf keeps well-formed, distinct entries only', () => {
  assert.deepEqual(maintainersOf({ maintainers: [{ name: 'a', email: 'a@x' }, { name: 'a' }, 'b', { name: 'B' }, { name: '' }, null, { name: 'c', email: 3 }] }), [{ name: 'a', email: 'a@x' }, { name: 'c' }]);
  assert.deepEqual(maintainersOf({ maintainers: 'alice' }), []);
  assert.deepEqual(maintainersOf(null), []);
});

test('11.8 parseOwnersBody: what npm owner add|rm sends is accepted, anything else refused, never throws', () => {
  const ok = parseOwnersBody('@s/p', { _id: '@s/p', _rev: '3-abc', maintainers: [{ name: 'alice', email: 'a@x' }, { name: 'bob' }] });
  assert.deepEqual(ok, { ok: true, maintainers: [{ name: 'alice', email: 'a@x' }, { name: 'bob' }] });
  for (const maintainers of [[], 'alice', [{ name: 'Alice' }], [{ name: 'a' }, { name: 'a' }], [{}], [{ name: 'a', email: 5 }], Array.from({ length: 101 }, (_, i) => ({ name: `u${i}` }))]) {
    assert.equal(parseOwnersBody('p', { _id: 'p', maintainers }).ok, false, JSON.stringify(maintainers).slice(0, 60));
  }
  assert.equal(parseOwnersBody('p', { _id: 'q', maintainers: [{ name: 'a' }] }).ok, false);
  fc.assert(
    fc.property(fc.dictionary(fc.constantFrom('_id', 'name', 'maintainers', '_rev'), fc.jsonValue({ maxDepth: 3 })), (body) => {
      const result = parseOwnersBody('p', body);
      if (result.ok) assert.ok(result.maintainers.length >= 1 && result.maintainers.every((m) => typeof m.name === 'string'));
      else assert.match(result.error, /^refused owners of p: /);
    }),
  );
  const verdict = checkPublishBody('p', true, { _id: 'p', _rev: '1-a', maintainers: [{ name: 'a' }] });
  assert.deepEqual(verdict, { ok: true, kind: 'owners' });
  assert.deepEqual(checkPublishBody('p', true, { _id: 'p', users: { a: true }, maintainers: [] }), { ok: true, kind: 'star' });
});

test('11.8 matchDeletePath mirrors Verdaccio\'s unpublish / tarball / dist-tag DELETE routes', () => {
  assert.deepEqual(matchDeletePath('/p/-rev/3-abc'), { name: 'p', kind: 'unpublish' });
  assert.deepEqual(matchDeletePath('/@s/p/-rev/3-abc'), { name: '@s/p', kind: 'unpublish' });
  assert.deepEqual(matchDeletePath('/%40s%2fp/-rev/3-abc'), { name: '@s/p', kind: 'unpublish' });
  assert.deepEqual(matchDeletePath('/p/-REV/3'), { name: 'p', kind: 'unpublish' }, 'express routes are case-insensitive');
  assert.deepEqual(matchDeletePath('/@s%2fp/-/p-1.0.0.tgz/-rev/3-abc'), { name: '@s/p', kind: 'unpublish' });
  assert.deepEqual(matchDeletePath('/-/package/@s%2fp/dist-tags/beta'), { name: '@s/p', kind: 'dist-tag' });
  assert.equal(matchDeletePath('/-/package/p/dist-tags'), null);
  assert.equal(matchDeletePath('/-/npm/v1/tokens/token/abc'), null);
  assert.equal(matchDeletePath('/p'), null);
});

test('11.9c foldIndex replays deprecations (empty message = undeprecate; unpublish clears) beside versions and tags', () => {
  const r = (kind: IndexRecord['kind'], version: string, detail = ''): IndexRecord => ({ kind, name: 'p', version, sha512: '', time: 1, detail });
  const folded = foldIndex([r('publish', '1.0.0'), r('publish', '2.0.0'), r('deprecate', '1.0.0', 'old'), r('deprecate', '2.0.0', 'x'), r('deprecate', '2.0.0', ''), r('dist-tag', '2.0.0', 'latest'), r('publish', '3.0.0'), r('deprecate', '3.0.0', 'y'), r('unpublish', '3.0.0')]).get('p');
  assert.deepEqual(folded?.versions, ['1.0.0', '2.0.0']);
  assert.deepEqual(folded?.deprecated, { '1.0.0': 'old' });
  assert.deepEqual(folded?.distTags, { latest: '2.0.0' });
});

test('11.9b a publish intent is read once and never serialised', () => {
  const meta: Record<string, unknown> = { name: 'p' };
  attachIntent(meta, { actor: { name: 'alice', admin: false }, tags: { latest: '1.0.0' } });
  assert.equal(JSON.stringify(meta), '{"name":"p"}');
  assert.deepEqual(takeIntent(meta)?.tags, { latest: '1.0.0' });
  assert.equal(takeIntent(meta), null);
  assert.equal(takeIntent(JSON.parse('{"name":"p"}')), null, 'a JSON body cannot carry one');
});
