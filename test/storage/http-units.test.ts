/**
 * Units of the storage part's middleware entry (plugins/verdaccio-registry-storage/http), in
 * process and without a server: the publish-body guard (against the bodies real clients send,
 * hostile variants, and fast-check properties checked with Verdaccio's own functions), the route
 * matching, the bounded response cache, the gzip negotiation and the fast path's render of a miss.
 */
import assert from 'node:assert/strict';
import { basename, join } from 'node:path';
import { describe, test } from 'node:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { tarballUtils } from '@verdaccio/core';
import fc from 'fast-check';
import { checkDistTagBody, checkPublishBody, isValidTagName } from '../../plugins/verdaccio-registry-storage/http/publish-guard';
import { tarballFileOf } from '../../plugins/verdaccio-registry-storage/names';
import { cachedVariantFor, ResponseCache, type CachedResponse } from '../../plugins/verdaccio-registry-storage/http/response-cache';
import { encodeScope, matchDistTagPath, matchPackumentPath, matchPublishPath } from '../../plugins/verdaccio-registry-storage/http/route-match';
import { isSettledRevision } from '../../plugins/verdaccio-registry-storage/http/routes';
import { createFastPath, type FastPathHandler, type FastPathHost, type RenderedPackument } from '../../plugins/verdaccio-registry-storage/http/fast-path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PROJECT_ROOT } from '../harness/registry';
import { makeTarball, sha1Hex, sha512Base64 } from './lib/packages';

// Verdaccio's own checks, the ones its publish handler runs on the body (test code may read its internals)
// eslint-disable-next-line @typescript-eslint/no-require-imports
const verdaccioValidation = require(join(PROJECT_ROOT, 'node_modules', 'verdaccio', 'build', 'lib', 'validation.js')) as { isNameValid(name: string): boolean };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const encodeScopePackage = (require('@verdaccio/middleware') as { encodeScopePackage(req: { url: string }, res: unknown, next: (err?: unknown) => void): void }).encodeScopePackage;

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const REGISTRY = 'http://localhost:4873';

/** The document libnpmpublish 11 sends for `npm publish` (attachment key includes the scope). */
function npmPublishBody(name: string, version: string, tag = 'latest'): Json {
  const tarball = makeTarball(name, version);
  const file = `${name}-${version}.tgz`;
  return {
    _id: name,
    name,
    description: 'a package',
    'dist-tags': { [tag]: version },
    versions: {
      [version]: {
        name,
        version,
        main: 'index.js',
        license: 'MIT',
        readme: '# hello',
        maintainers: [{ name: 'alice', email: 'alice@example.com' }],
        _id: `${name}@${version}`,
        _nodeVersion: '24.9.0',
        _npmVersion: '11.6.0',
        dist: { integrity: `sha512-${sha512Base64(tarball)}`, shasum: sha1Hex(tarball), tarball: `${REGISTRY}/${name}/-/${file}` },
      },
    },
    access: null,
    _attachments: { [file]: { content_type: 'application/octet-stream', data: tarball.toString('base64'), length: tarball.length } },
  };
}

/** What Verdaccio's GET ?write=true returns and npm sends back (minus a version) on `npm unpublish name@v`. */
function unpublishBody(name: string): Json {
  const doc = npmPublishBody(name, '1.0.0');
  return {
    _id: name,
    _rev: '3-abc',
    name,
    'dist-tags': { latest: '1.0.0', beta: '1.0.0' },
    versions: { '1.0.0': doc.versions['1.0.0'] },
    time: { modified: '2026-01-01T00:00:00.000Z', created: '2026-01-01T00:00:00.000Z', '1.0.0': '2026-01-01T00:00:00.000Z' },
    users: {},
    readme: '# hello',
  };
}

function expectRefused(body: unknown, pattern: RegExp, options: { name?: string; rev?: boolean } = {}): void {
  const verdict = checkPublishBody(options.name ?? '@acme/pkg', options.rev ?? false, body);
  assert.equal(verdict.ok, false, `expected a refusal matching ${pattern}`);
  if (!verdict.ok) assert.match(verdict.error, pattern);
}

describe('publish guard: what real clients send passes', () => {
  test('npm publish (scoped attachment key, as libnpmpublish names it), unscoped, bare-name key', () => {
    assert.deepEqual(checkPublishBody('@acme/pkg', false, npmPublishBody('@acme/pkg', '1.0.0')), { ok: true, kind: 'publish' });
    assert.deepEqual(checkPublishBody('plain', false, npmPublishBody('plain', '2.0.0-beta.1', 'next')), { ok: true, kind: 'publish' });
    const bare = npmPublishBody('@acme/pkg', '1.0.1');
    bare._attachments = { 'pkg-1.0.1.tgz': bare._attachments['@acme/pkg-1.0.1.tgz'] };
    assert.deepEqual(checkPublishBody('@acme/pkg', false, bare), { ok: true, kind: 'publish' });
  });

  test('npm unpublish of one version, deprecate, undeprecate, star', () => {
    assert.deepEqual(checkPublishBody('@acme/pkg', true, unpublishBody('@acme/pkg')), { ok: true, kind: 'change' });
    const deprecate: Json = { ...unpublishBody('@acme/pkg'), _attachments: {} };
    deprecate.versions['1.0.0'].deprecated = 'use 2.x';
    assert.deepEqual(checkPublishBody('@acme/pkg', false, deprecate), { ok: true, kind: 'change' });
    deprecate.versions['1.0.0'].deprecated = '';
    assert.deepEqual(checkPublishBody('@acme/pkg', false, deprecate), { ok: true, kind: 'change' });
    assert.deepEqual(checkPublishBody('@acme/pkg', true, { _id: '@acme/pkg', _rev: '4-abc', users: { alice: true } }), { ok: true, kind: 'star' });
  });
});

describe('publish guard: hostile and malformed bodies are refused with the field named', () => {
  const valid = (): Json => npmPublishBody('@acme/pkg', '1.0.0');
  const withAttachment = (key: string, ...value: unknown[]): Json => {
    const body = valid();
    body._attachments = { [key]: value.length > 0 ? value[0] : body._attachments['@acme/pkg-1.0.0.tgz'] };
    return body;
  };

  test('attachment names: encoded "/", paths, another version, another package, two, none', () => {
    expectRefused(withAttachment('..%2f..%2fpkg-1.0.0.tgz'), /attachment .*must be named "pkg-1\.0\.0\.tgz"/);
    expectRefused(withAttachment('../../pkg-1.0.0.tgz'), /must be named/);
    expectRefused(withAttachment('x/pkg-1.0.0.tgz'), /must be named/);
    expectRefused(withAttachment('pkg-1.0.1.tgz'), /must be named/);
    expectRefused(withAttachment('other-1.0.0.tgz'), /must be named/);
    const two = valid();
    two._attachments['pkg-1.0.0.tgz'] = two._attachments['@acme/pkg-1.0.0.tgz'];
    expectRefused(two, /exactly one attachment \(got 2/);
    expectRefused({ ...valid(), _attachments: {} }, /carries the tarball in "_attachments"/);
    expectRefused({ ...valid(), _attachments: 'x' }, /"_attachments" must be an object/);
  });

  test('attachment data: not a string, not base64, not gzip, wrong length', () => {
    for (const data of [null, 42, { a: 1 }, [], '']) expectRefused(withAttachment('@acme/pkg-1.0.0.tgz', { data }), /\.data must be the tarball as a non-empty base64 string/);
    expectRefused(withAttachment('@acme/pkg-1.0.0.tgz', { data: 'not base64!' }), /not valid base64/);
    expectRefused(withAttachment('@acme/pkg-1.0.0.tgz', { data: Buffer.from('plain text, no gzip').toString('base64') }), /not a gzip tarball/);
    const body = valid();
    body._attachments['@acme/pkg-1.0.0.tgz'].length += 1;
    expectRefused(body, /\.length .* does not match the \d+ bytes/);
    expectRefused(withAttachment('@acme/pkg-1.0.0.tgz', null), /must be an object with base64 "data"/);
  });

  test('names, versions and dist', () => {
    expectRefused({ ...valid(), name: '@acme/other' }, /name "@acme\/other" does not match the package in the URL "@acme\/pkg"/);
    expectRefused({ ...valid(), name: undefined }, /has no "name"/);
    expectRefused({ ...valid(), _id: 'x' }, /"_id" "x" does not match/);
    expectRefused({ ...valid(), versions: 'x' }, /"versions" must hold/);
    const two = valid();
    two.versions['1.0.1'] = two.versions['1.0.0'];
    expectRefused(two, /exactly one version \(got 2\)/);
    const notSemver = valid();
    notSemver.versions = { 'v1.0': notSemver.versions['1.0.0'] };
    expectRefused(notSemver, /"v1\.0" is not a semver version/);
    for (const meta of [null, 'x', 3, []]) expectRefused({ ...valid(), versions: { '1.0.0': meta } }, /versions\["1\.0\.0"\] must be the version's package\.json object/);
    const mutate = (edit: (meta: Json) => void): Json => {
      const body = valid();
      edit(body.versions['1.0.0']);
      return body;
    };
    expectRefused(mutate((m) => (m.name = 'evil')), /\.name "evil" does not match/);
    expectRefused(mutate((m) => (m.version = '9.9.9')), /\.version "9\.9\.9" does not match/);
    expectRefused(mutate((m) => (m.readme = { toString: 1 })), /\.readme must be a string/);
    expectRefused(mutate((m) => (m.maintainers = ['alice'])), /maintainers must be a list of \{name, email\} objects/);
    expectRefused(mutate((m) => delete m.dist), /\.dist must be an object/);
    expectRefused(mutate((m) => (m.dist.tarball = 42)), /dist\.tarball must be the tarball URL/);
    expectRefused(mutate((m) => (m.dist.tarball = `${REGISTRY}/@acme/pkg/-/other-1.0.0.tgz`)), /dist\.tarball must be an absolute http\(s\) URL ending in \/pkg-1\.0\.0\.tgz/);
    // relative or non-http URLs: Verdaccio's packument route would throw on `new URL()` for every later read
    for (const tarball of ['pkg-1.0.0.tgz', '/@acme/pkg/-/pkg-1.0.0.tgz', 'x/pkg-1.0.0.tgz', 'file:///etc/pkg-1.0.0.tgz', `${REGISTRY}/@acme/pkg/-/%70kg-1.0.0.tgz`]) {
      expectRefused(mutate((m) => (m.dist.tarball = tarball)), /dist\.tarball must be an absolute http\(s\) URL/);
    }
    expectRefused(mutate((m) => (m.dist.shasum = 'abc')), /shasum must be 40 hex digits/);
    // ssri.parse returns null for these: the storage once threw a TypeError (500) and kept the tarball
    for (const integrity of ['__proto__', 'x', 'md5-abc']) {
      expectRefused(mutate((m) => (m.dist.integrity = integrity)), /dist\.integrity .* (is not a Subresource Integrity string|has no sha512 or sha1 hash)/);
    }
    expectRefused(
      mutate((m) => {
        delete m.dist.shasum;
        delete m.dist.integrity;
      }),
      /declares neither integrity nor shasum/,
    );
  });

  test('dist-tags: only the published version, valid tag names', () => {
    expectRefused({ ...valid(), 'dist-tags': { latest: '2.0.0' } }, /points at "2\.0\.0", which is not the version being published/);
    expectRefused({ ...valid(), 'dist-tags': { latest: null } }, /must name a version \(got "null"\)/);
    expectRefused({ ...valid(), 'dist-tags': 'latest' }, /"dist-tags" must be an object/);
    for (const tag of ['1.0.0', 'a b', 'a/b', '', '__proto__', 'x'.repeat(129)]) {
      expectRefused({ ...valid(), 'dist-tags': JSON.parse(`{${JSON.stringify(tag)}: "1.0.0"}`) }, /dist-tag name .* is not valid/);
    }
  });

  test('changes (/-rev/, deprecations): no missing versions or tags, no attachments, typed values', () => {
    const change = (edit: (body: Json) => void): Json => {
      const body = unpublishBody('@acme/pkg');
      edit(body);
      return body;
    };
    const noVersions = change((b) => delete b.versions);
    // Verdaccio's own branch order: no "versions" but an object "users" is a star (it re-reads the stored document)
    assert.deepEqual(checkPublishBody('@acme/pkg', true, noVersions), { ok: true, kind: 'star' });
    delete noVersions.users;
    expectRefused(noVersions, /must carry the package's "versions" object/, { rev: true });
    expectRefused(change((b) => (b.versions['1.0.0'] = null)), /versions\["1\.0\.0"\] must be an object/, { rev: true });
    expectRefused(change((b) => delete b['dist-tags']), /must carry the package's "dist-tags"/, { rev: true });
    expectRefused(change((b) => (b['dist-tags'].latest = '3.0.0')), /points at "3\.0\.0", which is not among the document's versions/, { rev: true });
    expectRefused(change((b) => (b.versions['1.0.0'].deprecated = { evil: true })), /deprecated must be a string/, { rev: true });
    expectRefused(change((b) => (b.users = { alice: 'yes' })), /"users" entry "alice" must be true or false/, { rev: true });
    expectRefused(change((b) => (b._attachments = npmPublishBody('@acme/pkg', '1.0.1')._attachments)), /carries no "_attachments"/, { rev: true });
    expectRefused(change((b) => (b.name = '@acme/else')), /does not match the package in the URL/, { rev: true });
    expectRefused({ _id: '@acme/pkg', users: { alice: 1 } }, /"users" entry "alice" must be true or false/, { rev: true });
  });

  test('dist-tag writes: a version string for one tag, an object of tag → version|null for several', () => {
    assert.deepEqual(checkDistTagBody('@acme/pkg', 'beta', '1.0.0'), { ok: true, kind: 'change' });
    assert.deepEqual(checkDistTagBody('@acme/pkg', null, { beta: '1.0.0', old: null }), { ok: true, kind: 'change' });
    for (const body of [{}, 1, null, ['1.0.0']]) assert.match(String((checkDistTagBody('@acme/pkg', 'beta', body) as { error?: string }).error), /takes a JSON string naming a version/);
    assert.match(String((checkDistTagBody('@acme/pkg', 'beta', 'soon') as { error?: string }).error), /must name a version \(got "soon"\)/);
    assert.match(String((checkDistTagBody('@acme/pkg', '1.0.0', '1.0.0') as { error?: string }).error), /dist-tag name "1\.0\.0" is not valid/);
    assert.match(String((checkDistTagBody('@acme/pkg', null, 'beta') as { error?: string }).error), /must be an object of tag → version/);
    assert.match(String((checkDistTagBody('@acme/pkg', null, { beta: 3 }) as { error?: string }).error), /must name a version, or be null/);
  });

  test('not a JSON object at all', () => {
    for (const body of [null, 'text', 42, [], true]) expectRefused(body, /must be a JSON object/);
  });
});

describe('publish guard: properties (fast-check)', () => {
  test('never throws, whatever JSON arrives', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.boolean(), (body, rev) => {
        const verdict = checkPublishBody('@acme/pkg', rev, body);
        assert.equal(typeof verdict.ok, 'boolean');
      }),
      { numRuns: 2000 },
    );
  });

  /** A valid body with one value somewhere replaced by arbitrary JSON (or a key renamed). */
  const mutated = fc
    .record({
      path: fc.constantFrom(
        ['name'],
        ['_id'],
        ['versions'],
        ['versions', '1.0.0'],
        ['versions', '1.0.0', 'name'],
        ['versions', '1.0.0', 'version'],
        ['versions', '1.0.0', 'readme'],
        ['versions', '1.0.0', 'maintainers'],
        ['versions', '1.0.0', 'dist'],
        ['versions', '1.0.0', 'dist', 'tarball'],
        ['versions', '1.0.0', 'dist', 'shasum'],
        ['versions', '1.0.0', 'deprecated'],
        ['dist-tags'],
        ['dist-tags', 'latest'],
        ['_attachments'],
        ['_attachments', '@acme/pkg-1.0.0.tgz'],
        ['_attachments', '@acme/pkg-1.0.0.tgz', 'data'],
        ['_attachments', '@acme/pkg-1.0.0.tgz', 'length'],
        ['users'],
      ),
      value: fc.jsonValue({ maxDepth: 2 }),
      renameTo: fc.option(fc.oneof(fc.string(), fc.constantFrom('..%2fpkg-1.0.0.tgz', 'pkg-1.0.0.tgz', '__proto__', '1.0.0', 'x/y')), { nil: undefined }),
      rev: fc.boolean(),
    })
    .map(({ path, value, renameTo, rev }) => {
      const body = npmPublishBody('@acme/pkg', '1.0.0');
      let parent: Json = body;
      for (const key of path.slice(0, -1)) parent = parent[key];
      const last = path[path.length - 1];
      if (renameTo !== undefined && parent[last] !== undefined) {
        Object.defineProperty(parent, renameTo, { value: parent[last], enumerable: true, configurable: true, writable: true });
        delete parent[last];
      } else {
        parent[last] = value;
      }
      return { body: JSON.parse(JSON.stringify(body)) as unknown, rev };
    });

  test('whatever the guard lets through as a publish, Verdaccio\'s handler can process without throwing', () => {
    const seen = { accepted: 0, refused: 0 };
    fc.assert(
      fc.property(mutated, ({ body, rev }) => {
        const verdict = checkPublishBody('@acme/pkg', rev, body);
        if (!verdict.ok) seen.refused++;
        if (!verdict.ok || verdict.kind !== 'publish') return;
        seen.accepted++;
        const doc = body as Json;
        const [key] = Object.keys(doc._attachments);
        // LocalStorage.addTarball asserts this on path.basename(key)
        assert.ok(verdaccioValidation.isNameValid(basename(key)), key);
        // publishPackage's createTarball / createVersion
        assert.ok(Buffer.from(doc._attachments[key].data, 'base64').length > 0);
        const [version] = Object.keys(doc.versions);
        const meta = doc.versions[version];
        meta.readme = meta.readme == null ? '' : String(meta.readme);
        assert.equal(tarballFileOf(meta.dist.tarball), basename(key));
        // the packument route's convertDistRemoteToLocalTarballUrls → extractTarballFromUrl (new URL())
        assert.equal(tarballUtils.extractTarballFromUrl(meta.dist.tarball), basename(key));
        for (const tagged of Object.values(doc['dist-tags'] ?? {})) assert.equal(tagged, version);
      }),
      { numRuns: 3000 },
    );
    // the property is only worth something if both sides were exercised
    assert.ok(seen.accepted > 100, `accepted ${seen.accepted}`);
    assert.ok(seen.refused > 100, `refused ${seen.refused}`);
  });

  test('tag names the guard accepts survive a URL round trip and are never versions', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (tag) => {
        if (!isValidTagName(tag)) return;
        assert.equal(decodeURIComponent(encodeURIComponent(tag)), tag);
        assert.equal(encodeURIComponent(tag), tag);
        assert.doesNotMatch(tag, /^\d+\.\d+\.\d+/);
      }),
    );
  });
});

describe('route matching mirrors Verdaccio', () => {
  test('encodeScope equals @verdaccio/middleware encodeScopePackage on the path', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('@', '%40', '/', '%2f', '%2F', 'a', 'b', '-', 'rev', '.', '_'), { maxLength: 12 }).map((parts) => `/${parts.join('')}`),
        (path) => {
          const req = { url: path };
          encodeScopePackage(req, {}, () => undefined);
          assert.equal(encodeScope(path), req.url);
        },
      ),
      { numRuns: 3000 },
    );
  });

  test('packument paths: both scoped forms, encoded @, trailing slash; not versions or tarballs', () => {
    for (const path of ['/@acme/pkg', '/@acme%2fpkg', '/@acme%2Fpkg', '/%40acme%2fpkg', '/%40acme/pkg', '/@acme/pkg/']) {
      assert.equal(matchPackumentPath(path), '@acme/pkg', path);
    }
    assert.equal(matchPackumentPath('/plain'), 'plain');
    for (const path of ['/', '/plain/1.0.0', '/@acme/pkg/1.0.0', '/@acme/pkg/-/pkg-1.0.0.tgz', '/-/ping', '/%E0%A4%A']) {
      assert.equal(matchPackumentPath(path), null, path);
    }
  });

  test('publish paths: /:package, /:package/-rev/:rev in both scoped forms; other routes are not ours', () => {
    assert.deepEqual(matchPublishPath('/@acme/pkg'), { name: '@acme/pkg', viaRevisionPath: false });
    assert.deepEqual(matchPublishPath('/@acme%2fpkg/-rev/3-abc'), { name: '@acme/pkg', viaRevisionPath: true });
    assert.deepEqual(matchPublishPath('/@acme/pkg/-rev/3-abc'), { name: '@acme/pkg', viaRevisionPath: true });
    assert.deepEqual(matchPublishPath('/pkg/-rev'), { name: 'pkg', viaRevisionPath: true });
    assert.deepEqual(matchPublishPath('/pkg/%2Drev/1'), { name: 'pkg', viaRevisionPath: true });
    for (const path of ['/pkg/-REV/1', '/pkg/latest', '/-/user/org.couchdb.user:bob', '/pkg/-/pkg-1.0.0.tgz/-rev/1', '/a/b/c/d']) {
      assert.equal(matchPublishPath(path), null, path);
    }
  });

  test('dist-tag paths: long form with and without a tag, short PUT form; the publish route keeps -rev', () => {
    assert.deepEqual(matchDistTagPath('PUT', '/-/package/@acme%2fpkg/dist-tags/beta'), { name: '@acme/pkg', tag: 'beta' });
    assert.deepEqual(matchDistTagPath('POST', '/-/package/@acme/pkg/dist-tags/beta'), { name: '@acme/pkg', tag: 'beta' });
    assert.deepEqual(matchDistTagPath('POST', '/-/package/plain/dist-tags'), { name: 'plain', tag: null });
    assert.deepEqual(matchDistTagPath('PUT', '/@acme/pkg/beta'), { name: '@acme/pkg', tag: 'beta' });
    assert.deepEqual(matchDistTagPath('PUT', '/plain/next'), { name: 'plain', tag: 'next' });
    for (const [method, path] of [['PUT', '/-/package/plain/dist-tags'], ['PUT', '/plain/-rev'], ['POST', '/plain/next'], ['PUT', '/plain'], ['PUT', '/plain/-rev/1']]) {
      assert.equal(matchDistTagPath(method, path), null, `${method} ${path}`);
    }
  });

  test('revisions from the store\'s racy window are never cached', () => {
    assert.equal(isSettledRevision('12:345:1700000000000000000'), true);
    assert.equal(isSettledRevision('12:345:1700000000000000000:racy-99'), false);
  });
});

describe('response cache', () => {
  const entry = (revision: string, size: number): CachedResponse => ({
    revision,
    body: Buffer.alloc(size, 'a'),
    contentType: 'application/json; charset=utf-8',
    etag: '"x"',
  });

  test('an entry is valid only for its revision; a different revision drops it', () => {
    const cache = new ResponseCache({ maxEntries: 10, maxBytes: 1 << 20 });
    assert.equal(cache.set('k', entry('r1', 100)), true);
    assert.ok(cache.get('k', 'r1'));
    assert.equal(cache.get('k', 'r2'), undefined);
    assert.equal(cache.get('k', 'r1'), undefined, 'the stale entry is gone');
    assert.equal(cache.stats().entries, 0);
    assert.equal(cache.stats().bytes, 0);
  });

  test('bounded in entries, least recently used goes first', () => {
    const cache = new ResponseCache({ maxEntries: 3, maxBytes: 1 << 20 });
    for (const key of ['a', 'b', 'c']) cache.set(key, entry('r', 10));
    assert.ok(cache.get('a', 'r')); // a is now the most recent
    cache.set('d', entry('r', 10));
    assert.equal(cache.get('b', 'r'), undefined);
    assert.ok(cache.get('a', 'r'));
    assert.ok(cache.get('c', 'r'));
    assert.ok(cache.get('d', 'r'));
    assert.equal(cache.stats().entries, 3);
    assert.equal(cache.stats().evictions, 1);
  });

  test('bounded in bytes (gzip variants included); one oversized entry is not stored', () => {
    const cache = new ResponseCache({ maxEntries: 1000, maxBytes: 64 * 1024 });
    assert.equal(cache.set('huge', entry('r', 20 * 1024)), false);
    for (let i = 0; i < 100; i++) cache.set(`k${i}`, entry('r', 4 * 1024));
    assert.ok(cache.stats().bytes <= 64 * 1024, `bytes ${cache.stats().bytes}`);
    assert.ok(cache.stats().entries < 16);
    const key = 'k99';
    const hit = cache.get(key, 'r');
    assert.ok(hit);
    const before = cache.stats().bytes;
    const gzip = cache.variantOf(key, hit, 'gzip');
    assert.deepEqual(gunzipSync(gzip), hit.body);
    assert.equal(cache.variantOf(key, hit, 'gzip'), gzip, 'made once');
    assert.ok(cache.stats().bytes <= 64 * 1024);
    assert.ok(cache.stats().bytes !== before || cache.stats().evictions > 0);
  });

  test('random operations keep the bounds and the byte count exact', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ op: fc.constantFrom('set', 'get', 'gzip', 'delete'), key: fc.integer({ min: 0, max: 12 }), size: fc.integer({ min: 0, max: 3000 }), rev: fc.constantFrom('r1', 'r2') }), { maxLength: 200 }),
        (ops) => {
          const cache = new ResponseCache({ maxEntries: 5, maxBytes: 10_000 });
          for (const { op, key, size, rev } of ops) {
            const k = `key-${key}`;
            if (op === 'set') cache.set(k, entry(rev, size));
            else if (op === 'get') cache.get(k, rev);
            else if (op === 'delete') cache.delete(k);
            else {
              const hit = cache.get(k, rev);
              if (hit) cache.variantOf(k, hit, 'gzip');
            }
            const stats = cache.stats();
            assert.ok(stats.entries <= 5);
            assert.ok(stats.bytes <= 10_000);
            assert.ok(stats.bytes >= 0);
            if (stats.entries === 0) assert.equal(stats.bytes, 0);
          }
        },
      ),
    );
  });
});

describe('17.3 encoding negotiation matches compression() for the cases served pre-compressed', () => {
  test('17.3 gzip / br / identity exactly when compression() would pick them (the core negotiation, wildcards included); null when deflate wins', () => {
    for (const header of ['gzip,deflate', 'gzip, deflate', 'GZIP', 'gzip;q=1, deflate;q=0.5', 'deflate, gzip', 'gzip, identity', 'zstd, gzip;q=0.9', 'br;q=0.5, gzip', 'gzip, *;q=0']) {
      assert.equal(cachedVariantFor(header), 'gzip', header);
    }
    for (const header of ['br', 'gzip, br', 'gzip, deflate, br, zstd', 'BR, gzip', 'br;q=0.9, gzip;q=0.9', '*']) {
      assert.equal(cachedVariantFor(header), 'br', header);
    }
    for (const header of [undefined, '', 'identity', 'gzip;q=0', 'gzip;q=0.1, identity', 'gzip;q=abc', 'zstd']) {
      assert.equal(cachedVariantFor(header), 'identity', String(header));
    }
    for (const header of ['deflate', 'gzip;q=0.5, deflate']) {
      assert.equal(cachedVariantFor(header), null, header);
    }
  });

  test('17.3 the brotli variant is made once, decodes to the body, and the byte budget counts it', () => {
    const cache = new ResponseCache({ maxEntries: 10, maxBytes: 1024 * 1024 });
    const body = Buffer.from(JSON.stringify({ name: 'x', readme: 'r'.repeat(4000) }));
    cache.set('k', { revision: '1', body, contentType: 'application/json', etag: '"e"' });
    const before = cache.stats().bytes;
    const hit = cache.get('k', '1');
    assert.ok(hit);
    const br = cache.variantOf('k', hit, 'br');
    assert.equal(cache.variantOf('k', hit, 'br'), br, 'made once');
    assert.deepEqual(brotliDecompressSync(br), body);
    assert.equal(cache.stats().bytes, before + br.length);
  });
});

describe('17.9 the fast path renders a local packument miss and records it only under the full path\'s rule', () => {
  const host: FastPathHost = {
    commonHeaders: [['Access-Control-Allow-Origin', '*']],
    anonymous: { name: null, remote: {} },
    userOf: (identity) => ({ name: identity.user, remote: {} }),
    mayAccess: (_name, _user, done) => done(true),
    attachUser: () => undefined,
    protocolOf: () => 'http',
    clientIpOf: () => '127.0.0.1',
    hostHeaderUsable: () => true,
    acceptsPackageName: () => true,
    forwardedProtoHeader: 'x-forwarded-proto',
  };
  const rendered = (text: string): RenderedPackument => ({ body: Buffer.from(text), contentType: 'application/json; charset=utf-8', etag: `"${text.length}"` });

  /** One GET through the handler: what it wrote, or that it declined. */
  const get = (handler: FastPathHandler, headers: Record<string, string> = {}): Promise<{ declined: boolean; status?: number; body?: string; headers?: string[] }> =>
    new Promise((resolve) => {
      const req = { method: 'GET', url: '/pkg', headers: { host: 'registry.test', ...headers } } as unknown as IncomingMessage;
      let status: number | undefined;
      let written: string[] | undefined;
      const res: { headersSent: boolean; writeHead(code: number, list: string[]): void; end(body?: Buffer): void; destroy(): void } = {
        headersSent: false,
        writeHead(code, list) {
          status = code;
          written = list;
          res.headersSent = true;
        },
        end(body) {
          resolve({ declined: false, status, body: body?.toString(), headers: written });
        },
        destroy() {
          resolve({ declined: false, status: -1 });
        },
      };
      handler(req, res as unknown as ServerResponse, () => resolve({ declined: true }));
    });

  const setup = (revisions: string[], answers: (RenderedPackument | null)[]) => {
    const cache = new ResponseCache({ maxEntries: 10, maxBytes: 1 << 20 });
    const lookups: boolean[] = [];
    let renders = 0;
    let asked = 0;
    const handler = createFastPath({
      host,
      cache,
      // each call takes the next revision (the last one repeats): the store as seen before and after the read
      revisionOf: () => revisions[Math.min(asked++, revisions.length - 1)],
      upstreamServesHeld: null,
      tarballBytes: null,
      verifyToken: () => Promise.reject(new Error('no tokens here')),
      onCacheLookup: (hit) => lookups.push(hit),
      render: (_req, _name, _protocol, done) => {
        const answer = answers[Math.min(renders++, answers.length - 1)];
        setImmediate(() => done(answer));
      },
    });
    return { handler, cache, lookups, renders: () => renders };
  };

  test('inside the racy window: rendered and answered, never looked up nor recorded', async () => {
    const { handler, cache, lookups, renders } = setup(['1:2:3:racy-9'], [rendered('{"name":"pkg"}')]);
    const answer = await get(handler);
    assert.equal(answer.status, 200);
    assert.equal(answer.body, '{"name":"pkg"}');
    assert.deepEqual(answer.headers, ['Access-Control-Allow-Origin', '*', 'Content-Type', 'application/json; charset=utf-8', 'ETag', '"14"', 'Content-Length', '14', 'Vary', 'Accept-Encoding']);
    assert.equal(cache.stats().entries, 0);
    assert.deepEqual(lookups, []);
    await get(handler);
    assert.equal(renders(), 2, 'a racy revision is rendered again');
  });

  test('a settled revision still current after the read: recorded (one miss counted), the next GET is a hit', async () => {
    const { handler, cache, lookups, renders } = setup(['1:2:3'], [rendered('{"name":"pkg","v":1}')]);
    const first = await get(handler, { 'x-registry-debug': 'cache' });
    assert.equal(first.status, 200);
    assert.ok(first.headers?.includes('miss'), `the debug header says miss: ${first.headers?.join(' ')}`);
    assert.equal(cache.stats().entries, 1);
    const second = await get(handler, { 'x-registry-debug': 'cache' });
    assert.equal(second.body, first.body);
    assert.ok(second.headers?.includes('hit'));
    assert.equal(renders(), 1);
    assert.deepEqual(lookups, [false, true]);
  });

  test('the revision changed during the render: answered, not recorded', async () => {
    const { handler, cache } = setup(['1:2:3', '4:5:6'], [rendered('{"name":"pkg"}')]);
    const answer = await get(handler);
    assert.equal(answer.status, 200);
    assert.equal(cache.stats().entries, 0);
  });

  test('a render Verdaccio would not answer with a 200 goes to the full path, nothing written; a proxied miss is never rendered', async () => {
    const local = setup(['1:2:3'], [null]);
    assert.deepEqual(await get(local.handler), { declined: true });
    assert.equal(local.cache.stats().entries, 0);
    const proxied = setup(['upstream:1:2:3'], [rendered('{}')]);
    assert.deepEqual(await get(proxied.handler), { declined: true });
    assert.equal(proxied.renders(), 0);
  });
});
