/**
 * Issue 15.7 "Dashboard, the registry's life" on a real registry (real npm for the publishes a
 * user would make, raw PUTs — the body npm sends — to seed many packages):
 * the paged package list from the index, the package view and its access rule, the readme made
 * inert, the activity counts from the core metrics, and one WebSocket event per publish.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { addUser, createClientDir, startRegistry, writePackage, type RunningRegistry } from '../harness/registry';
import { publishRaw } from '../storage/lib/packages';
import { fetchActivity, fetchPackage, fetchPackages } from '../../terminal/api';
import { ADMIN, READER, SocketClient, createUsers, request, socketUrl, startDashboardRegistry } from './helpers';

type Row = { name: string; versions: string[]; distTags: Record<string, string>; time: string; source: string };
type Page = { packages: Row[]; total: number; offset: number; limit: number | null; local: number; cached: number };
type Version = { version: string; time: string | null; publisher: string | null; integrity: string | null; shasum: string | null; tarballBytes: number | null; unpackedSize: number | null; fileCount: number | null; tags: string[]; dependencyCount: number };
type View = {
  name: string;
  source: string;
  description: string | null;
  distTags: Record<string, string>;
  shown: string | null;
  maintainers: { name: string }[];
  versions: Version[];
  dependencies: Record<string, Record<string, string>>;
  readme: { html: string; truncated: boolean; length: number };
};
type Activity = { bucketSeconds: number; buckets: { start: string; publishes: number; downloads: number; requests: number }[]; totals: { publishes: number; downloads: number; requests: number }; storage: { localBytes: number; cachedBytes: number; files: number } | null };

const SEEDED = 130;
const HOSTILE_README = [
  '# Hostile readme',
  '<script>window.__pwned = 1</script>',
  '<img src="http://127.0.0.2:9/x.png" onerror="window.__pwned = 2">',
  '[click me](javascript:window.__pwned=3)',
  '[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)',
  '![remote image](http://127.0.0.2:9/logo.png)',
  '<a href="javascript:alert(1)">raw link</a>',
  '[fine](https://example.invalid/docs)',
  '```js\nconst x = "<b>not bold</b>";\n```',
].join('\n\n');

describe('15.7 dashboard: the registry\'s life', () => {
  let registry: RunningRegistry;
  let admin: string;
  let reader: string;

  before(async () => {
    registry = await startDashboardRegistry({
      editConfig: (config) => {
        // a package only alice may read: bob (signed in) is refused with 403, anonymous with 401
        config.packages = { 'alice-only-*': { access: ADMIN.name, publish: ADMIN.name, unpublish: ADMIN.name }, ...(config.packages as object) };
      },
    });
    ({ admin, reader } = await createUsers(registry));
  });

  after(async () => {
    await registry?.stop();
  });

  it('15.7 the package list pages and searches at scale, from the index, with access rules', async () => {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < SEEDED) {
        const i = next++;
        const name = i % 10 === 0 ? `secret-scale-${String(i).padStart(3, '0')}` : `scale-${String(i).padStart(3, '0')}`;
        const answer = await publishRaw(registry.url, admin, name, '1.0.0');
        assert.ok(answer.status === 201 || answer.status === 200, `${name}: ${answer.status} ${answer.text}`);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);

    const get = async (path: string, token?: string): Promise<Page> => {
      const answer = await request(registry, path, token === undefined ? {} : { token });
      assert.equal(answer.status, 200, answer.text);
      return answer.body as Page;
    };
    const everything = await get('/_dashboard/api/packages', reader);
    assert.equal(everything.total, SEEDED);
    assert.equal(everything.packages.length, SEEDED, 'without limit: the whole list (the `packages` command and scripts)');
    assert.equal(everything.limit, null);
    assert.equal(everything.local, SEEDED);
    assert.equal(everything.cached, 0);
    const names = everything.packages.map((row) => row.name);
    assert.deepEqual(names, [...names].sort((a, b) => a.localeCompare(b)), 'sorted by name');
    assert.deepEqual(everything.packages.find((row) => row.name === 'scale-001'), { ...everything.packages.find((row) => row.name === 'scale-001'), versions: ['1.0.0'], distTags: { latest: '1.0.0' }, source: 'local' });

    // pages of 17 put back together are the list, each name once
    const paged: string[] = [];
    for (let offset = 0; offset < everything.total; offset += 17) {
      const page = await get(`/_dashboard/api/packages?offset=${offset}&limit=17`, reader);
      assert.equal(page.total, SEEDED);
      assert.equal(page.offset, offset);
      assert.equal(page.limit, 17);
      assert.equal(page.packages.length, Math.min(17, SEEDED - offset));
      paged.push(...page.packages.map((row) => row.name));
    }
    assert.deepEqual(paged, names);
    const past = await get(`/_dashboard/api/packages?offset=${SEEDED + 5}&limit=10`, reader);
    assert.deepEqual(past.packages, []);
    assert.equal(past.total, SEEDED);

    // search: case-insensitive substring, counted before paging
    const search = await get('/_dashboard/api/packages?q=SCALE-01&limit=3', reader);
    const expected = names.filter((name) => name.includes('scale-01'));
    assert.equal(search.total, expected.length);
    assert.deepEqual(search.packages.map((row) => row.name), expected.slice(0, 3));

    // anonymous: secret-* is not listed and not counted
    const anonymous = await get('/_dashboard/api/packages?limit=500');
    assert.equal(anonymous.total, SEEDED - SEEDED / 10);
    assert.ok(anonymous.packages.every((row) => !row.name.startsWith('secret-')));

    for (const bad of ['limit=0', 'limit=501', 'limit=x', 'offset=-1', 'offset=1.5', 'limit=1&limit=2']) {
      const answer = await request(registry, `/_dashboard/api/packages?${bad}`);
      assert.equal(answer.status, 400, `${bad}: ${answer.text}`);
      assert.match(String((answer.body as { error?: string }).error), /limit|offset/);
    }
  });

  it('15.7 the package view: versions, dist-tags, dependencies, maintainers, publisher, size, integrity, readme', async () => {
    const client = createClientDir(registry, { token: admin });
    const spec = (version: string) => ({
      name: 'life-view',
      version,
      files: { 'index.js': `module.exports = ${JSON.stringify(version)};\n`, 'README.md': `# life-view ${version}\n\nSome *emphasis* and a [link](https://example.invalid/).\n` },
      extra: { description: 'the package view test', dependencies: { 'scale-001': '^1.0.0' }, peerDependencies: { 'scale-002': '*' }, repository: { type: 'git', url: 'git+https://example.invalid/life-view.git' } },
    });
    for (const version of ['1.0.0', '1.1.0']) {
      const published = await client.npm(['publish'], { cwd: writePackage(client.dir, spec(version)) });
      assert.equal(published.code, 0, `${published.stdout}\n${published.stderr}`);
    }
    const tagged = await client.npm(['dist-tag', 'add', 'life-view@1.0.0', 'stable']);
    assert.equal(tagged.code, 0, tagged.stderr);

    const answer = await request(registry, '/_dashboard/api/package?name=life-view');
    assert.equal(answer.status, 200, answer.text);
    const view = answer.body as View;
    assert.equal(view.name, 'life-view');
    assert.equal(view.source, 'local');
    assert.equal(view.description, 'the package view test');
    assert.deepEqual(view.distTags, { latest: '1.1.0', stable: '1.0.0' });
    assert.equal(view.shown, '1.1.0');
    assert.deepEqual(view.versions.map((v) => v.version), ['1.1.0', '1.0.0'], 'newest first');
    assert.deepEqual(view.versions.map((v) => v.tags), [['latest'], ['stable']]);
    assert.deepEqual(view.maintainers.map((m) => m.name), [ADMIN.name]);
    assert.deepEqual(view.dependencies.dependencies, { 'scale-001': '^1.0.0' });
    assert.deepEqual(view.dependencies.peerDependencies, { 'scale-002': '*' });
    for (const version of view.versions) {
      assert.equal(version.publisher, ADMIN.name, 'the authenticated publisher (_npmUser)');
      assert.ok(version.time && Date.parse(version.time) > 0);
      // the numbers are the stored tarball's: fetch it and compare
      const tarball = Buffer.from(await (await fetch(`${registry.url}/life-view/-/life-view-${version.version}.tgz`, { headers: { authorization: `Bearer ${admin}` } })).arrayBuffer());
      assert.equal(version.tarballBytes, tarball.length);
      assert.equal(version.integrity, `sha512-${createHash('sha512').update(tarball).digest('base64')}`);
      assert.equal(version.shasum, createHash('sha1').update(tarball).digest('hex'));
      assert.equal(version.dependencyCount, 1);
      assert.ok(version.fileCount === null || version.fileCount >= 3, `fileCount ${version.fileCount}`);
    }
    assert.match(view.readme.html, /<h1>life-view 1\.1\.0<\/h1>/);
    assert.match(view.readme.html, /<em>emphasis<\/em>/);
    assert.match(view.readme.html, /<a href="https:\/\/example\.invalid\/" rel="noopener noreferrer nofollow">link<\/a>/);

    const scoped = await request(registry, '/_dashboard/api/package?name=%40nobody%2Fmissing');
    assert.equal(scoped.status, 404, scoped.text);
    for (const bad of ['', 'name=', 'name=..%2F..%2Fetc', 'name=a%20b', `name=${'a'.repeat(215)}`, 'name=a&name=b']) {
      const refused = await request(registry, `/_dashboard/api/package?${bad}`);
      assert.equal(refused.status, 400, `${bad}: ${refused.text}`);
      assert.equal(typeof (refused.body as { error?: unknown }).error, 'string');
    }
    assert.equal((await request(registry, '/_dashboard/api/package?name=life-view', { method: 'POST', body: '{}' })).status, 405);
  });

  it('15.7 a package the caller may not read: 401 anonymous, 403 for a user the rule leaves out, 200 for its reader', async () => {
    const published = await publishRaw(registry.url, admin, 'alice-only-thing', '1.0.0');
    assert.equal(published.status, 201, published.text);
    const anonymous = await request(registry, '/_dashboard/api/package?name=alice-only-thing');
    assert.equal(anonymous.status, 401, anonymous.text);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /Bearer/);
    const bob = await request(registry, '/_dashboard/api/package?name=alice-only-thing', { token: reader });
    assert.equal(bob.status, 403, bob.text);
    assert.doesNotMatch(bob.text, /1\.0\.0|versions/, 'nothing of the package leaks in the refusal');
    // a name that does not exist under the same rule is refused the same way: the refusal says nothing about existence
    const ghost = await request(registry, '/_dashboard/api/package?name=alice-only-ghost', { token: reader });
    assert.equal(ghost.status, 403);
    const alice = await request(registry, '/_dashboard/api/package?name=alice-only-thing', { token: admin });
    assert.equal(alice.status, 200, alice.text);
    // and the list agrees with the view
    const listed = (await request(registry, '/_dashboard/api/packages?q=alice-only', { token: reader })).body as Page;
    assert.equal(listed.total, 0);
    assert.equal(((await request(registry, '/_dashboard/api/packages?q=alice-only', { token: admin })).body as Page).total, 1);
  });

  it('15.7 a readme with <script>, onerror and javascript: links is rendered inert', async () => {
    const published = await publishRaw(registry.url, admin, 'life-hostile', '1.0.0', { extra: { readme: HOSTILE_README } });
    assert.equal(published.status, 201, published.text);
    const view = (await request(registry, '/_dashboard/api/package?name=life-hostile')).body as View;
    const html = view.readme.html;
    assert.ok(html.length > 0, 'a readme was rendered');
    assert.doesNotMatch(html, /<script/i);
    assert.doesNotMatch(html, /<img/i, 'no image is loaded');
    assert.doesNotMatch(html, /<[^>]+\son[a-z]+\s*=/i, 'no event handler attribute');
    assert.doesNotMatch(html, /href="\s*(javascript|data|vbscript):/i);
    assert.match(html, /&lt;script&gt;/, 'raw HTML is shown as text');
    assert.match(html, /image: remote image/);
    assert.match(html, /<a href="https:\/\/example\.invalid\/docs" rel="noopener noreferrer nofollow">fine<\/a>/);
    assert.match(html, /<pre><code class="language-js">const x = &quot;&lt;b&gt;not bold&lt;\/b&gt;&quot;;/);
  });

  it('15.7 a publish is one event on the WebSocket (dist-tag latest rides on it), and the activity counts it', async () => {
    const socket = await SocketClient.open(socketUrl(registry));
    try {
      await socket.next((m) => m.type === 'history');
      const activityBefore = (await request(registry, '/_dashboard/api/activity')).body as Activity;
      const client = createClientDir(registry, { token: admin });
      const published = await client.npm(['publish'], { cwd: writePackage(client.dir, { name: 'life-event', version: '1.0.0' }) });
      assert.equal(published.code, 0, published.stderr);
      const publish = await socket.next((m) => m.type === 'event' && m.kind === 'publish' && m.name === 'life-event', 10_000, 'the publish event');
      assert.equal(publish.version, '1.0.0');
      assert.deepEqual(publish.tags, ['latest']);
      assert.equal(publish.user, ADMIN.name);
      // a later, separate change bounds the wait: everything the publish caused came before it
      const tagged = await client.npm(['dist-tag', 'add', 'life-event@1.0.0', 'stable']);
      assert.equal(tagged.code, 0, tagged.stderr);
      await socket.next((m) => m.type === 'event' && m.kind === 'dist-tag' && m.detail === 'stable', 10_000, 'the dist-tag event');
      const about = socket.messages.filter((m) => m.type === 'event' && m.name === 'life-event');
      assert.deepEqual(
        about.map((m) => `${String(m.kind)} ${String(m.detail ?? '')}`.trim()),
        ['publish', 'dist-tag stable'],
        'one event for the publish, one for the later dist-tag',
      );

      // the download and the publish reach the activity counters (core metrics, counted by the ops part)
      const download = await fetch(`${registry.url}/life-event/-/life-event-1.0.0.tgz`);
      assert.equal(download.status, 200);
      await download.arrayBuffer();
      const activity = (await request(registry, '/_dashboard/api/activity')).body as Activity;
      assert.equal(activity.bucketSeconds, 60);
      assert.equal(activity.buckets.length, 60);
      assert.equal(activity.totals.publishes - activityBefore.totals.publishes, 1, 'one publish counted once');
      assert.ok(activity.totals.downloads - activityBefore.totals.downloads >= 1, 'the download');
      assert.ok(activity.totals.requests > activityBefore.totals.requests);
      const sum = (doc: Activity, key: 'publishes' | 'downloads'): number => doc.buckets.reduce((n, b) => n + b[key], 0);
      assert.equal(sum(activity, 'publishes') - sum(activityBefore, 'publishes'), 1, 'the chart buckets hold it');
      // the storage size is measured (in the background) and grows with what is stored
      const storage = await (async () => {
        for (let i = 0; i < 50; i++) {
          const doc = (await request(registry, '/_dashboard/api/activity')).body as Activity;
          if (doc.storage !== null && doc.storage.files > 0) return doc.storage;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        return null;
      })();
      assert.ok(storage && storage.localBytes > 0, `storage measured: ${JSON.stringify(storage)}`);

      // the socket pushes the activity document too (on the tick or soon after a publish)
      const pushed = await socket.next((m) => m.type === 'activity', 10_000, 'an activity message');
      assert.ok(Array.isArray(pushed.buckets));
    } finally {
      socket.ws.close();
    }
  });

  it('15.7 the terminal client reads the same documents over HTTP (its schemas accept what the server sends)', async () => {
    const detail = await fetchPackage(registry.url, undefined, 'life-view');
    assert.equal(detail.name, 'life-view');
    assert.equal(detail.versions[0].publisher, ADMIN.name);
    assert.ok(detail.versions.every((v) => v.integrity?.startsWith('sha512-')));
    const activity = await fetchActivity(registry.url, undefined);
    assert.equal(activity.buckets.length, 60);
    const listed = await fetchPackages(registry.url, reader);
    assert.ok(listed.some((p) => p.name === 'life-view'));
    await assert.rejects(fetchPackage(registry.url, reader, 'alice-only-thing'), /403/);
  });
});

describe('15.7 dashboard: a package cached from the upstream', () => {
  let upstream: RunningRegistry;
  let ours: RunningRegistry;

  before(async () => {
    upstream = await startRegistry();
    const token = await addUser(upstream, 'publisher', 'publisher-password-1');
    const published = await publishRaw(upstream.url, token, 'up-cached', '1.0.0', { extra: { readme: '# from the upstream\n\n<script>x()</script>' } });
    assert.equal(published.status, 201, published.text);
    ours = await startDashboardRegistry({ editConfig: (config) => (config.uplinks = { upstream: { url: upstream.url, maxage: '0s', timeout: '3s' } }) });
  });

  after(async () => {
    await ours?.stop();
    await upstream?.stop();
  });

  it('15.7 is listed as cached, and its view says so, with the cached tarball\'s size and integrity', async () => {
    const packument = await fetch(`${ours.url}/up-cached`);
    assert.equal(packument.status, 200);
    await packument.arrayBuffer();
    const tarball = Buffer.from(await (await fetch(`${ours.url}/up-cached/-/up-cached-1.0.0.tgz`)).arrayBuffer());
    assert.ok(tarball.length > 0);

    // the cache fill answers the client first and commits (tarball + its `cache` index record)
    // under the package lock right after (docs/upstream.md): poll, bounded, for the commit
    let listing = (await request(ours, '/_dashboard/api/packages?q=up-cached&limit=10')).body as Page;
    for (let tries = 0; tries < 100 && listing.cached === 0; tries++) {
      await new Promise((resolveWait) => setTimeout(resolveWait, 50));
      listing = (await request(ours, '/_dashboard/api/packages?q=up-cached&limit=10')).body as Page;
    }
    assert.deepEqual(listing.packages.map((row) => [row.name, row.source]), [['up-cached', 'cached']]);
    assert.deepEqual([listing.local, listing.cached], [0, 1]);
    const view = (await request(ours, '/_dashboard/api/package?name=up-cached')).body as View;
    assert.equal(view.source, 'cached');
    assert.equal(view.versions[0].version, '1.0.0');
    assert.equal(view.versions[0].tarballBytes, tarball.length, 'the file in the upstream cache');
    assert.equal(view.versions[0].integrity, `sha512-${createHash('sha512').update(tarball).digest('base64')}`);
    assert.match(view.readme.html, /<h1>from the upstream<\/h1>/);
    assert.doesNotMatch(view.readme.html, /<script/);
  });
});

void READER;
