/**
 * Issue 15.7 units: the readme renderer's output over generated hostile markdown (fast-check),
 * the activity buckets under a frozen clock, one event per publish from a write's index records.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { registryMetrics } from '../../plugins/registry-core/index';
import { ActivityRecorder, activityTotalsFrom, measureStorage, type ActivityTotals } from '../../plugins/verdaccio-registry-dashboard/activity';
import { isAllowedLink, README_ATTRIBUTES, README_TAGS, renderReadme } from '../../plugins/verdaccio-registry-dashboard/readme';
import { buildPackageView, isPackageName, isPlainFileName, storedTarballFiles } from '../../plugins/verdaccio-registry-dashboard/package-view';
import { eventsOf } from '../../plugins/verdaccio-registry-storage/lockb-sink';
import { createConfigFile, defaultFields, PackageIndex } from '../../plugins/registry-core/index';
import { ACCESS_MEMO_DROP_MS, ACCESS_MEMO_MS, PackageCatalog } from '../../plugins/verdaccio-registry-dashboard/packages';
import { anonymousUser, authenticatedUser } from '../../plugins/verdaccio-registry-dashboard/verdaccio-adapter';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const RUNS = Number(process.env.README_FUZZ_RUNS ?? 3000);

const HOSTILE = [
  // an empty destination skips markdown-it's validateLink (found by this property, seed 614438642)
  '[ok]: https://ok.invalid/ref\n\n[ok]()',
  '[x]() [y](<>) [z]( )',
  '<script>alert(1)</script>',
  '<SCRIPT SRC=//evil.invalid/x.js></SCRIPT>',
  '<img src=x onerror=alert(1)>',
  '<img src="http://evil.invalid/x.png">',
  '"><svg onload=alert(1)>',
  '<iframe src="//evil.invalid"></iframe>',
  '<a href="javascript:alert(1)">x</a>',
  '<style>body{display:none}</style>',
  '<!-- comment -->',
  '[a](javascript:alert(1))',
  '[a](JaVaScRiPt:alert(1))',
  '[a]( javascript:alert(1) )',
  '[a](java\tscript:alert(1))',
  '[a](&#106;avascript:alert(1))',
  '[a](javascript&colon;alert(1))',
  '[a](data:text/html;base64,PHNjcmlwdD4=)',
  '[a](vbscript:msgbox(1))',
  '[a](file:///etc/passwd)',
  '[a](//evil.invalid/x)',
  '[a](/relative/path)',
  '[a](https://ok.invalid/" onmouseover="alert(1))',
  '[a](https://ok.invalid/x "title onclick=alert(1)")',
  '<javascript:alert(1)>',
  '<https://ok.invalid/auto>',
  '![i](http://evil.invalid/x.png)',
  '![i](javascript:alert(1))',
  '![<img src=x onerror=1>](https://ok.invalid/y.png)',
  '![i](data:image/png;base64,iVBORw0KGgo=)',
  '[ref]: javascript:alert(1)\n\n[ref]',
  '[ok]: https://ok.invalid/ref\n\n[ok]',
  '```\n<script>alert(1)</script>\n```',
  '```js onload=alert(1)\nx\n```',
  '`<b onclick=1>`',
  '| a | b |\n|---|:-:|\n| <x onerror=1> | [l](javascript:1) |',
  '# <h1 onclick=1>head</h1>',
  '> <blockquote onmouseover=1>',
  '1. one\n2. two',
  '* item\n* <li onclick=1>',
  '&lt;script&gt;',
  '**bold** _em_ ~~s~~',
  '\u0000\u0001\u007f',
];

const ATTRIBUTE = /\s([a-z-]+)="([^"<>]*)"/gy;
const TAG = /<(\/?)([a-zA-Z0-9]+)([^>]*)>/g;

function decodeEntities(text: string): string {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n)))
    .replace(/&amp;/g, '&');
}

/** Every tag of the output is allowed, with allowed, double-quoted attributes; every href is a link the page may carry. */
function assertInert(html: string): void {
  // nothing that looks like markup outside a tag: text is escaped
  const outside = html.replace(TAG, '');
  assert.doesNotMatch(outside, /[<>]/, `stray angle bracket in ${JSON.stringify(html)}`);
  for (const match of html.matchAll(TAG)) {
    const [whole, closing, rawTag, rest] = match;
    const tag = rawTag.toLowerCase();
    assert.ok(README_TAGS.has(tag), `tag <${tag}> in ${JSON.stringify(whole)}`);
    if (closing) {
      assert.equal(rest.trim(), '', `attributes on a closing tag: ${whole}`);
      continue;
    }
    const attributes = rest.replace(/\s*\/$/, '');
    ATTRIBUTE.lastIndex = 0;
    let consumed = 0;
    for (let m = ATTRIBUTE.exec(attributes); m !== null; m = ATTRIBUTE.exec(attributes)) {
      consumed = ATTRIBUTE.lastIndex;
      const [, name, value] = m;
      assert.ok((README_ATTRIBUTES[tag] ?? []).includes(name), `attribute ${name} on <${tag}>: ${whole}`);
      if (name === 'href') {
        const href = decodeEntities(value);
        assert.ok(isAllowedLink(href), `href ${JSON.stringify(href)}`);
        // eslint-disable-next-line no-control-regex
        assert.match(href.replace(/[\u0000-\u0020]/g, ''), /^(https?:\/\/|mailto:|#)/i, `href ${JSON.stringify(href)}`);
      }
      if (name === 'class') assert.match(value, /^(language-[A-Za-z0-9_+-]+|readme-image)$/);
    }
    assert.equal(attributes.slice(consumed).trim(), '', `unparsed attribute text in ${whole}`);
  }
}

describe('15.7 dashboard units', () => {
  it('15.7 the readme renderer escapes <script>, onerror, javascript: and images in any mix (fast-check)', () => {
    const fragment = fc.oneof(fc.constantFrom(...HOSTILE), fc.string({ maxLength: 40 }), fc.constantFrom('\n', '\n\n', ' ', '[', ']', '(', ')', '<', '>', '"', '!', '`', '*', '#', '|', '&'));
    const markdown = fc.array(fragment, { maxLength: 30 }).map((parts) => parts.join(''));
    fc.assert(
      fc.property(markdown, (text) => {
        const { html, truncated } = renderReadme(text);
        assert.equal(truncated, false);
        assertInert(html);
      }),
      { numRuns: RUNS },
    );
  });

  it('15.7 every hostile sample alone is inert, and the harmless parts still render', () => {
    for (const sample of HOSTILE) assertInert(renderReadme(sample).html);
    assert.match(renderReadme('**bold** _em_').html, /<strong>bold<\/strong> <em>em<\/em>/);
    assert.match(renderReadme('<https://ok.invalid/auto>').html, /<a href="https:\/\/ok.invalid\/auto" rel="noopener noreferrer nofollow">/);
    assert.doesNotMatch(renderReadme('[a](javascript:alert(1))').html, /<a /);
    assert.doesNotMatch(renderReadme('![i](http://evil.invalid/x.png)').html, /<img/);
    const long = renderReadme('x'.repeat(300 * 1024));
    assert.equal(long.truncated, true);
    assert.equal(long.length, 300 * 1024);
  });

  it('15.7 package names and stored tarball file names cannot leave the package folder (fast-check)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 60 }), fc.webUrl({ withQueryParameters: true, withFragments: true }), fc.constantFrom('../../x.tgz', 'http://h/a/..', 'http://h/%2e%2e', 'http://h/a\\..\\b', 'x/.', '/')), (tarball) => {
        const files = storedTarballFiles({ name: 'p', versions: { '1.0.0': { dist: { tarball } } }, 'dist-tags': {}, time: {}, document: {} });
        const file = files.get('1.0.0');
        if (file === undefined) return;
        assert.ok(isPlainFileName(file), file);
        assert.doesNotMatch(file, /[/\\]/, 'no path separator');
        assert.ok(file !== '.' && file !== '..');
      }),
      { numRuns: 3000 },
    );
    const files = storedTarballFiles({ name: '@s/pkg', versions: { '1.0.0': { dist: { tarball: 'http://127.0.0.1:4873/@s/pkg/-/pkg-1.0.0.tgz?x=1' } }, '2.0.0': { dist: { tarball: 'http://h/a/..' } }, '3.0.0': {} }, 'dist-tags': {}, time: {}, document: {} });
    assert.deepEqual([...files], [['1.0.0', 'pkg-1.0.0.tgz']]);
    assert.equal(isPackageName('@scope/name'), true);
    assert.equal(isPackageName('../etc'), false);
    assert.equal(isPackageName('@scope/../x'), false);
    assert.equal(isPackageName('a'.repeat(215)), false);
  });

  it('15.7 the package view reads publisher, sizes, integrity and maintainers defensively', () => {
    const view = buildPackageView(
      {
        name: 'p',
        versions: {
          '1.0.0': { _npmUser: { name: 'alice' }, dist: { integrity: 'sha512-x', shasum: 'ab', unpackedSize: 10, fileCount: 2 }, dependencies: { a: '1' } },
          '2.0.0': { _npmUser: 'bob <bob@example.invalid>', dist: 'not an object', deprecated: 'use 3' },
        },
        'dist-tags': { latest: '1.0.0', next: '2.0.0' },
        time: { '1.0.0': '2026-01-01T00:00:00.000Z', '2.0.0': '2026-02-01T00:00:00.000Z' },
        document: { maintainers: [{ name: 'alice', email: 'a@example.invalid' }, 'carol', 42], readme: '# hi' },
      },
      'local',
      new Map([['1.0.0', 123]]),
    );
    assert.equal(view.shown, '1.0.0');
    assert.deepEqual(view.versions.map((v) => [v.version, v.publisher, v.tarballBytes, v.integrity, v.deprecated]), [
      ['2.0.0', 'bob', null, null, 'use 3'],
      ['1.0.0', 'alice', 123, 'sha512-x', undefined],
    ]);
    assert.deepEqual(view.maintainers, [{ name: 'alice', email: 'a@example.invalid' }, { name: 'carol' }]);
    assert.deepEqual(view.dependencies.dependencies, { a: '1' });
    assert.equal(view.readme.html, '<h1>hi</h1>\n');
  });

  it('15.7 activity: per-minute buckets from cumulative counters, under a frozen clock', () => {
    let now = Date.UTC(2026, 11, 2, 8, 0, 10);
    const totals: ActivityTotals = { publishes: 5, downloads: 7, requests: 100 };
    const recorder = new ActivityRecorder(() => ({ ...totals }), { now: () => now, buckets: 5 });
    totals.publishes += 1;
    totals.requests += 3;
    let doc = recorder.document(null);
    assert.equal(doc.buckets.length, 5);
    assert.deepEqual(doc.buckets.at(-1), { start: '2026-12-02T08:00:00.000Z', publishes: 1, downloads: 0, requests: 3 });
    assert.deepEqual(doc.totals, { publishes: 1, downloads: 0, requests: 3 });

    now += 60_000; // 08:01:10 — a sample marks the new minute; what came before stays in 08:00
    recorder.sample();
    totals.downloads += 2;
    now += 120_000; // 08:03:10, nothing sampled in 08:02
    recorder.sample();
    totals.publishes += 4;
    doc = recorder.document(null);
    assert.deepEqual(
      doc.buckets.map((b) => [b.start.slice(11, 16), b.publishes, b.downloads, b.requests]),
      [
        ['07:59', 0, 0, 0],
        ['08:00', 1, 0, 3],
        ['08:01', 0, 2, 0],
        ['08:02', 0, 0, 0],
        ['08:03', 4, 0, 0],
      ],
    );
    assert.deepEqual(doc.totals, { publishes: 5, downloads: 2, requests: 3 });

    now += 10 * 60_000; // the window moves on: old minutes fall out, totals stay
    doc = recorder.document(null);
    assert.deepEqual(doc.buckets.map((b) => b.publishes + b.downloads + b.requests), [0, 0, 0, 0, 0]);
    assert.deepEqual(doc.totals, { publishes: 5, downloads: 2, requests: 3 });
  });

  it('15.7 activity totals come from the core metrics: downloads are 2xx GETs of tarballs, the dashboard\'s own requests are left out', () => {
    const metrics = registryMetrics(join(mkdtempSync(join(tmpdir(), 'activity-')), 'registry.lockb'));
    const read = activityTotalsFrom(metrics);
    assert.deepEqual(read(), { publishes: 0, downloads: 0, requests: 0 });
    metrics.inc('registry_publishes_total');
    metrics.inc('registry_http_requests_total', { method: 'GET', route: '/:package/-/:filename', status: '200' }, 3);
    metrics.inc('registry_http_requests_total', { method: 'GET', route: '/:package/-/:filename', status: '404' });
    metrics.inc('registry_http_requests_total', { method: 'GET', route: '/_dashboard/api/*', status: '200' }, 10);
    metrics.inc('registry_http_requests_total', { method: 'PUT', route: '/:package', status: '201' });
    assert.deepEqual(read(), { publishes: 1, downloads: 3, requests: 5 });
  });

  it('15.7 storage size: bytes of the storage folder, the upstream cache apart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'storage-size-'));
    mkdirSync(join(dir, 'pkg'));
    mkdirSync(join(dir, '.upstream', 'other'), { recursive: true });
    writeFileSync(join(dir, 'pkg', 'package.json'), 'x'.repeat(100));
    writeFileSync(join(dir, 'pkg', 'pkg-1.0.0.tgz'), 'y'.repeat(50));
    writeFileSync(join(dir, '.upstream', 'other', 'other-1.0.0.tgz'), 'z'.repeat(30));
    const size = await measureStorage(dir, () => 0);
    assert.deepEqual({ ...size, tookMs: 0 }, { localBytes: 150, cachedBytes: 30, files: 3, measuredAt: new Date(0).toISOString(), tookMs: 0 });
  });

  it('15.7 a publish is one event: the dist-tags of the same write ride on it; a tag moved later is its own event', () => {
    const record = (kind: 'publish' | 'dist-tag' | 'deprecate', version: string, detail = '') => ({ kind, name: 'p', version, sha512: '', time: 1, detail });
    const events = eventsOf([record('publish', '1.0.0'), record('dist-tag', '1.0.0', 'latest'), record('dist-tag', '1.0.0', 'beta')], 'alice');
    assert.deepEqual(events, [{ kind: 'publish', time: 1, name: 'p', version: '1.0.0', user: 'alice', tags: ['latest', 'beta'] }]);
    const later = eventsOf([record('dist-tag', '0.9.0', 'latest')], 'alice');
    assert.deepEqual(later, [{ kind: 'dist-tag', time: 1, name: 'p', version: '0.9.0', detail: 'latest' }]);
    // a write that publishes 2.0.0 and moves `stable` to an older version: one publish, one dist-tag
    const mixed = eventsOf([record('publish', '2.0.0'), record('dist-tag', '2.0.0', 'latest'), record('dist-tag', '1.0.0', 'stable')], undefined);
    assert.deepEqual(mixed.map((e) => [e.kind, e.version, e.tags ?? e.detail]), [['publish', '2.0.0', ['latest']], ['dist-tag', '1.0.0', 'stable']]);
  });

  it('15.7 the catalog: one fold per index state, pages and counts, access decisions reused for ACCESS_MEMO_MS per caller (frozen clock)', async () => {
    const lockb = join(mkdtempSync(join(tmpdir(), 'catalog-')), 'registry.lockb');
    createConfigFile(lockb, defaultFields());
    const index = PackageIndex.open(lockb);
    const sha = '';
    for (let i = 0; i < 40; i++) {
      const name = i % 4 === 0 ? `secret-${i}` : `pkg-${String(i).padStart(2, '0')}`;
      index.append({ kind: 'publish', name, version: '1.0.0', sha512: sha, time: 1000 + i, detail: '' });
      index.append({ kind: 'dist-tag', name, version: '1.0.0', sha512: sha, time: 1000 + i, detail: 'latest' });
    }
    index.append({ kind: 'cache', name: 'upstream-thing', version: '2.0.0', sha512: sha, time: 5000, detail: 'http://127.0.0.1:1/' });
    let now = 1_000_000;
    let asked = 0;
    // the `packages:` rule of the test config: secret-* for signed-in users only
    const catalog = new PackageCatalog(() => index.readAll(), {
      canAccess: async (name, user) => {
        asked += 1;
        return !name.startsWith('secret-') || user.name !== undefined;
      },
    }, () => now);
    const anonymous = anonymousUser();
    const bob = authenticatedUser('bob', []);

    const first = await catalog.page(anonymous, { offset: 0, limit: 7 });
    assert.equal(first.total, 31);
    assert.deepEqual([first.local, first.cached], [30, 1]);
    assert.deepEqual(first.packages.map((p) => p.name), ['pkg-01', 'pkg-02', 'pkg-03', 'pkg-05', 'pkg-06', 'pkg-07', 'pkg-09']);
    assert.equal(asked, 41, 'every name asked once');
    const rest = await catalog.page(anonymous, { offset: 28, limit: 7 });
    assert.deepEqual(rest.packages.map((p) => [p.name, p.source]), [['pkg-38', 'local'], ['pkg-39', 'local'], ['upstream-thing', 'cached']]);
    assert.equal(asked, 41, 'the next page reuses the decisions');
    assert.equal((await catalog.page(bob, { offset: 0 })).total, 41, 'another caller is asked afresh');
    assert.equal(asked, 82);
    // older than the memo time: answered from the memo, every known name asked again in the background
    now += ACCESS_MEMO_MS + 1;
    const stale = await catalog.page(anonymous, { offset: 0, filter: 'PKG-3' });
    assert.equal(stale.total, 8);
    await catalog.settled();
    assert.equal(asked, 82 + 41, 'the background re-check asked each known name once');
    await catalog.page(anonymous, { offset: 0 });
    assert.equal(asked, 82 + 41, 'fresh again: nothing asked');
    // a publish: the fold is redone, only the new name is asked
    index.append({ kind: 'publish', name: 'pkg-new', version: '1.0.0', sha512: sha, time: 9000, detail: '' });
    const after = await catalog.page(anonymous, { offset: 0, filter: 'pkg-' });
    assert.equal(after.total, 31);
    assert.equal(asked, 82 + 41 + 1);
    assert.equal(catalog.find('pkg-new')?.versions[0], '1.0.0');
    // a caller not seen for ACCESS_MEMO_DROP_MS starts afresh
    now += ACCESS_MEMO_DROP_MS + 1;
    await catalog.page(bob, { offset: 0, limit: 1 });
    assert.equal(asked, 82 + 41 + 1 + 42);
    index.close();
  });
});
