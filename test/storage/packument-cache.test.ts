/**
 * The packument response cache of the storage part's middleware entry, through a real registry
 * and real npm 11: a write (publish, dist-tag, deprecate, unpublish, a hand edit on disk) is never
 * followed by a stale answer, access rules hold after another user warmed the cache, both scoped
 * URL forms share one entry, conditional GETs get 304 — and the cache switches itself off (saying
 * so on the boot timeline) where a packument could depend on more than its file.
 *
 * Every staleness check first proves the cache is warm (`x-registry-cache: hit` on a settled
 * packument), so a pass means the cache was in play, not bypassed.
 */
import assert from 'node:assert/strict';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CACHE_HEADER, DEBUG_REQUEST_HEADER } from '../../plugins/registry-core/index';
import { RACY_WINDOW_MS } from '../../plugins/verdaccio-registry-storage/fs-store';
import { rawRequest } from '../harness/raw-http';
import { addUser, createClientDir, startRegistry, writePackage, type ClientDir, type RunningRegistry } from '../harness/registry';
import { publishBody, publishRaw, putPackage, useOurStorage } from './lib/packages';

/** What npm sends for `npm view` (full document) and for `npm install` (abbreviated, gzip). */
/** every request asks for the cache header (docs/http-api.md: it is sent only when asked) */
const FULL = { accept: 'application/json', [DEBUG_REQUEST_HEADER]: 'cache' };
const INSTALL = { accept: 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*', 'accept-encoding': 'gzip,deflate' };
/** The store never reuses a revision taken within 100 ms of a write; wait that out before expecting hits. */

interface Answer {
  status: number;
  cache: string | null;
  etag: string | null;
  json: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  headers: Headers;
}

async function get(registry: RunningRegistry, path: string, options: { token?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const response = await fetch(`${registry.url}${path}`, {
    headers: { ...FULL, ...options.headers, ...(options.token ? { authorization: `Bearer ${options.token}` } : {}) },
  });
  const text = await response.text();
  let json = {};
  try {
    json = JSON.parse(text) as object;
  } catch {
    json = { raw: text };
  }
  return { status: response.status, cache: response.headers.get(CACHE_HEADER), etag: response.headers.get('etag'), json, headers: response.headers };
}

/** GETs until the answer comes from the cache (bounded); returns that answer. */
async function warm(registry: RunningRegistry, path: string, options: { token?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const deadline = Date.now() + 5000;
  for (let attempt = 0; attempt < 50 && Date.now() < deadline; attempt++) {
    const answer = await get(registry, path, options);
    assert.equal(answer.status, 200, `warming ${path}: ${JSON.stringify(answer.json)}`);
    if (answer.cache === 'hit') return answer;
    await new Promise((resolve) => setTimeout(resolve, RACY_WINDOW_MS + 20));
  }
  assert.fail(`${path} never came from the cache`);
}

/**
 * Right after a write the store's revision is in its racy window (the cache is bypassed); once
 * settled the cache is consulted again. A stale answer must show up in neither phase.
 */
async function eachPhase(check: () => Promise<void>): Promise<void> {
  await check();
  await new Promise((resolve) => setTimeout(resolve, RACY_WINDOW_MS + 30));
  await check(); // settled: a miss that refills the cache
  await check(); // settled: from the cache
}

function versionsOf(answer: Answer): string[] {
  return Object.keys(answer.json.versions ?? {}).sort();
}

async function npmOk(client: ClientDir, args: string[], cwd?: string): Promise<string> {
  const result = await client.npm(args, { cwd });
  assert.equal(result.code, 0, `npm ${args.join(' ')}\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** `npm view --json` from a fresh npm cache (so npm's own cache cannot explain what we see). */
async function npmView(registry: RunningRegistry, spec: string, field: string, token?: string): Promise<unknown> {
  const viewer = createClientDir(registry, { token });
  const out = await npmOk(viewer, ['view', spec, field, '--json']);
  return JSON.parse(out) as unknown;
}

function withPrivateScope(config: Record<string, unknown>): void {
  useOurStorage(config);
  config.packages = {
    '@private/*': { access: 'alice', publish: 'alice', unpublish: 'alice' },
    ...(config.packages as Record<string, unknown>),
  };
}

describe('packument cache: never stale after a write, access rules hold', () => {
  let registry: RunningRegistry;
  let alice: string;
  let bob: string;
  let publisher: ClientDir;
  const name = '@acme/cached';
  const path = '/@acme%2fcached';

  before(async () => {
    registry = await startRegistry({ editConfig: withPrivateScope });
    assert.match(registry.logs(), /storage-http: packument cache on \(1000 entries, 64 MB\)/);
    assert.match(registry.logs(), /storage-http: publish guard on PUT \/:package/);
    alice = await addUser(registry, 'alice', 'correct-horse-battery');
    bob = await addUser(registry, 'bob', 'correct-horse-battery');
    publisher = createClientDir(registry, { token: alice });
    await npmOk(publisher, ['publish'], writePackage(publisher.dir, { name, version: '1.0.0' }));
  });
  after(async () => {
    await registry?.stop();
  });

  test('both scoped URL forms and an encoded @ share one entry; the cached body is what Verdaccio rendered', async () => {
    const rendered = await warm(registry, path);
    for (const form of ['/@acme/cached', '/%40acme%2Fcached', '/@acme%2Fcached/']) {
      const answer = await get(registry, form);
      assert.equal(answer.status, 200, form);
      assert.equal(answer.cache, 'hit', form);
      assert.deepEqual(answer.json, rendered.json, form);
      assert.equal(answer.etag, rendered.etag, form);
    }
    // the tarball URL is built from the request's Host: another Host is another entry, never a replay of this one
    const other = await get(registry, path, { headers: { 'x-forwarded-proto': 'https' } });
    assert.equal(other.status, 200);
    assert.notEqual(other.cache, 'hit');
    assert.match(other.json.versions['1.0.0'].dist.tarball, /^https:\/\//);
    assert.match(rendered.json.versions['1.0.0'].dist.tarball, /^http:\/\//);
  });

  test('16.5 the x-registry-cache header only when the request asks for it (x-registry-debug: cache)', async () => {
    await warm(registry, path);
    const asked = await get(registry, path);
    assert.equal(asked.cache, 'hit');
    const plain = await fetch(`${registry.url}${path}`, { headers: { accept: 'application/json' } });
    assert.equal(plain.status, 200);
    await plain.arrayBuffer();
    assert.equal(plain.headers.get(CACHE_HEADER), null, 'not asked: not sent');
    const other = await fetch(`${registry.url}${path}`, { headers: { accept: 'application/json', [DEBUG_REQUEST_HEADER]: 'timing' } });
    await other.arrayBuffer();
    assert.equal(other.headers.get(CACHE_HEADER), null, 'asked for something else: not sent');
  });

  test('If-None-Match with the cached ETag gets 304; HEAD gets headers only', async () => {
    const warmAnswer = await warm(registry, path);
    const { status } = await rawRequest(registry, { path, headers: { ...FULL, 'if-none-match': warmAnswer.etag ?? '' } });
    assert.equal(status, 304);
    const head = await fetch(`${registry.url}${path}`, { method: 'HEAD', headers: FULL });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('etag'), warmAnswer.etag);
    assert.equal(await head.text(), '');
  });

  test('npm publish of a new version: npm view and the abbreviated document show it at once', async () => {
    await warm(registry, path);
    const abbreviatedBefore = await warm(registry, path, { headers: INSTALL });
    assert.deepEqual(versionsOf(abbreviatedBefore), ['1.0.0']);
    await npmOk(publisher, ['publish'], writePackage(publisher.dir, { name, version: '1.1.0' }));
    await eachPhase(async () => {
      const right = await get(registry, path);
      assert.deepEqual(versionsOf(right), ['1.0.0', '1.1.0']);
      assert.equal(right.json['dist-tags'].latest, '1.1.0');
      const abbreviated = await get(registry, path, { headers: INSTALL });
      assert.deepEqual(versionsOf(abbreviated), ['1.0.0', '1.1.0']);
    });
    assert.deepEqual(await npmView(registry, name, 'versions'), ['1.0.0', '1.1.0']);
    // and the new document is cached in turn
    const again = await warm(registry, path);
    assert.deepEqual(versionsOf(again), ['1.0.0', '1.1.0']);
  });

  test('npm dist-tag add / rm: visible at once', async () => {
    assert.equal((await warm(registry, path)).json['dist-tags'].stable, undefined);
    await npmOk(publisher, ['dist-tag', 'add', `${name}@1.0.0`, 'stable']);
    await eachPhase(async () => assert.equal((await get(registry, path)).json['dist-tags'].stable, '1.0.0'));
    assert.deepEqual(await npmView(registry, name, 'dist-tags'), { latest: '1.1.0', stable: '1.0.0' });
    assert.equal((await warm(registry, path)).json['dist-tags'].stable, '1.0.0');
    await npmOk(publisher, ['dist-tag', 'rm', name, 'stable']);
    await eachPhase(async () => assert.equal((await get(registry, path)).json['dist-tags'].stable, undefined));
    assert.deepEqual(await npmView(registry, name, 'dist-tags'), { latest: '1.1.0' });
  });

  test('npm deprecate: visible at once', async () => {
    assert.equal((await warm(registry, path)).json.versions['1.0.0'].deprecated, undefined);
    await npmOk(publisher, ['deprecate', `${name}@1.0.0`, 'use 1.1']);
    await eachPhase(async () => assert.equal((await get(registry, path)).json.versions['1.0.0'].deprecated, 'use 1.1'));
    assert.equal(await npmView(registry, `${name}@1.0.0`, 'deprecated'), 'use 1.1');
  });

  test('npm unpublish of one version, then of the whole package: gone at once', async () => {
    assert.deepEqual(versionsOf(await warm(registry, path)), ['1.0.0', '1.1.0']);
    assert.deepEqual(versionsOf(await warm(registry, path, { headers: INSTALL })), ['1.0.0', '1.1.0']);
    await npmOk(publisher, ['unpublish', `${name}@1.1.0`, '--force']);
    await eachPhase(async () => {
      assert.deepEqual(versionsOf(await get(registry, path)), ['1.0.0']);
      assert.deepEqual(versionsOf(await get(registry, path, { headers: INSTALL })), ['1.0.0']);
    });
    assert.deepEqual(await npmView(registry, name, 'versions'), ['1.0.0']);
    await warm(registry, path);
    await npmOk(publisher, ['unpublish', name, '--force']);
    await eachPhase(async () => {
      assert.equal((await get(registry, path)).status, 404);
      assert.equal((await get(registry, '/@acme/cached', { headers: INSTALL })).status, 404);
    });
  });

  test('a hand edit of package.json on disk (another process) is served at once', async () => {
    const edited = '@acme/edited';
    assert.equal((await publishRaw(registry.url, alice, edited, '1.0.0')).status, 201);
    const before = await warm(registry, '/@acme%2fedited');
    assert.equal(before.json.versions['1.0.0'].description, undefined);
    const file = join(registry.storageDir, '@acme', 'edited', 'package.json');
    const manifest = JSON.parse(readFileSync(file, 'utf8')) as { versions: Record<string, Record<string, unknown>> };
    manifest.versions['1.0.0'].description = 'edited by hand';
    writeFileSync(`${file}.hand`, JSON.stringify(manifest, null, '\t'));
    renameSync(`${file}.hand`, file);
    await eachPhase(async () => assert.equal((await get(registry, '/@acme%2fedited')).json.versions['1.0.0'].description, 'edited by hand'));
  });

  test('a user without access gets 401/403 even after an authorised user warmed the cache', async () => {
    const secret = '@private/secret';
    assert.equal((await publishRaw(registry.url, alice, secret, '1.0.0')).status, 201);
    const warmAnswer = await warm(registry, '/@private%2fsecret', { token: alice });
    assert.deepEqual(versionsOf(warmAnswer), ['1.0.0']);
    for (const form of ['/@private%2fsecret', '/@private/secret']) {
      for (const headers of [FULL, INSTALL]) {
        const anonymous = await get(registry, form, { headers });
        assert.equal(anonymous.status, 401, `${form} anonymous: ${JSON.stringify(anonymous.json)}`);
        assert.equal(anonymous.json.versions, undefined);
        const other = await get(registry, form, { token: bob, headers });
        assert.equal(other.status, 403, `${form} bob: ${JSON.stringify(other.json)}`);
        assert.equal(other.json.versions, undefined);
      }
    }
    const viewer = createClientDir(registry, { token: bob });
    const denied = await viewer.npm(['view', secret, 'versions', '--json']);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /E403|403/);
    // still served to alice, from the cache
    assert.equal((await get(registry, '/@private/secret', { token: alice })).cache, 'hit');
  });

  test('a Host header Verdaccio cannot build tarball URLs from is a 400, and the server lives on', async () => {
    for (const host of ['bad_host', 'a b', 'x..y', 'u:C7', 'h:k#x']) {
      const { status } = await rawRequest(registry, { path, headers: { host } });
      assert.equal(status, 400, host);
    }
    assert.equal((await fetch(`${registry.url}/-/ping`)).status, 200);
    assert.equal(registry.process.exitCode, null);
  });
});

describe('packument cache switches itself off where a packument depends on more than its file', () => {
  async function publishAndRead(registry: RunningRegistry, name: string): Promise<Array<string | null>> {
    const token = await addUser(registry, 'offuser', 'correct-horse-battery');
    const published = await publishRaw(registry.url, token, name, '1.0.0');
    assert.equal(published.status, 201, published.text);
    await new Promise((resolve) => setTimeout(resolve, RACY_WINDOW_MS + 50));
    const seen: Array<string | null> = [];
    for (let i = 0; i < 3; i++) {
      const answer = await get(registry, `/${name.replace('/', '%2f')}`);
      assert.equal(answer.status, 200);
      seen.push(answer.cache);
    }
    return seen;
  }

  test('uplinks with proxy rules: off, with the reason on the boot timeline', async () => {
    const registry = await startRegistry({
      editConfig: (config) => {
        useOurStorage(config);
        config.uplinks = { npmjs: { url: 'http://127.0.0.1:9/', timeout: '1s', max_fails: 1 } };
        config.packages = { '**': { access: '$all', publish: '$authenticated', unpublish: '$authenticated', proxy: 'npmjs' } };
        config.publish = { allow_offline: true };
      },
    });
    try {
      assert.match(registry.logs(), /storage-http: packument cache off: packages: proxy to uplinks \(npmjs\)/);
      assert.deepEqual(await publishAndRead(registry, '@acme/proxied'), [null, null, null]);
    } finally {
      await registry.stop();
    }
  });

  test('filters: configured: off', async () => {
    const registry = await startRegistry({
      editConfig: (config) => {
        useOurStorage(config);
        config.filters = { 'registry-no-such-filter': {} };
      },
    });
    try {
      assert.match(registry.logs(), /storage-http: packument cache off: filters: plugins configured \(registry-no-such-filter\)/);
      assert.deepEqual(await publishAndRead(registry, '@acme/filtered'), [null, null, null]);
    } finally {
      await registry.stop();
    }
  });

  test('packument_cache: false: off by config; the publish guard still answers', async () => {
    const registry = await startRegistry({
      editConfig: (config) => {
        useOurStorage(config);
        (config.middlewares as Record<string, unknown>)['registry-storage-http'] = { packument_cache: false };
      },
    });
    try {
      assert.match(registry.logs(), /storage-http: packument cache off: packument_cache: false in config\.yaml/);
      assert.deepEqual(await publishAndRead(registry, '@acme/uncached'), [null, null, null]);
      const token = await addUser(registry, 'offuser', 'correct-horse-battery');
      const bad = await putPackage(registry.url, token, '@acme/uncached2', publishBody(registry.url, '@acme/uncached2', '1.0.0', { attachmentName: '..%2fx-1.0.0.tgz' }).body);
      assert.equal(bad.status, 400, bad.text);
    } finally {
      await registry.stop();
    }
  });

  test('Verdaccio\'s own storage instead of registry-storage: off (no revision to key on); the guard still protects it', async () => {
    const registry = await startRegistry({
      editConfig: (config) => {
        delete config.store;
      },
    });
    try {
      assert.match(registry.logs(), /storage-http: packument cache off: the store plugin is not registry-storage/);
      assert.deepEqual(await publishAndRead(registry, '@acme/stock'), [null, null, null]);
      const token = await addUser(registry, 'offuser', 'correct-horse-battery');
      const body = publishBody(registry.url, '@acme/stock2', '1.0.0', { attachmentName: '..%2f..%2fstock2-1.0.0.tgz' }).body;
      for (const attempt of [1, 2]) {
        const bad = await putPackage(registry.url, token, '@acme/stock2', body);
        assert.equal(bad.status, 400, `attempt ${attempt}: ${bad.text}`);
      }
      assert.equal((await fetch(`${registry.url}/-/ping`)).status, 200);
    } finally {
      await registry.stop();
    }
  });
});
