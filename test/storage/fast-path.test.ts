/**
 * The read fast path (plugins/verdaccio-registry-storage/http/fast-path.ts, issues 12 and 17)
 * through real registries: access rules and granular token limits hold on cache hits warmed by
 * an authorised user, conditional/HEAD/encoded answers match the full path, a stale proxied
 * packument is revalidated with the upstream (OFFLINE serves the held copy), a publish is never
 * followed by the old document, and `fast_path: false` turns it off with identical answers.
 *
 * Every check first proves the cache is warm (`x-registry-cache: hit`), so the fast path was in play.
 * Two fast-check properties (17.10 local, 12.f3 proxied) send random requests to a registry with
 * the fast path and one without (same storage, or the same upstream) and require the same status,
 * headers and body; they count how many answers were the fast path's cache hits.
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CACHE_HEADER } from '../../plugins/registry-core/index';
import { RACY_WINDOW_MS } from '../../plugins/verdaccio-registry-storage/fs-store';
import { NODE_BIN, PROJECT_ROOT, addUser, cleanEnv, createClientDir, run, startRegistry, type RunningRegistry } from '../harness/registry';
import { ABBREVIATED, answersAlike, basic, raw, withFastPathOff, type Raw } from './lib/answers-alike';
import { publishEach, publishRaw } from './lib/packages';
import { startRelay, type Relay } from './lib/relay';

const PASSWORD = 'correct-horse-battery';
const CONFIG_CLI = join(PROJECT_ROOT, 'build', 'scripts', 'config-cli.js');
/** a description large enough that the document is compressed (response-cache.ts COMPRESSION_THRESHOLD) */
const LONG = { description: 'fast path '.repeat(400) };

/** GETs until the answer comes from the cache (bounded); returns that answer. */
async function warm(registry: RunningRegistry, path: string, options: { headers?: Record<string, string>; token?: string } = {}): Promise<Raw> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const answer = await raw(registry, path, options);
    assert.equal(answer.status, 200, `warming ${path}: ${answer.decoded.toString()}`);
    if (answer.headers[CACHE_HEADER] === 'hit') return answer;
    await new Promise((resolve) => setTimeout(resolve, RACY_WINDOW_MS + 20));
  }
  assert.fail(`${path} never came from the cache`);
}

describe('17.x fast path: access, conditionals, encodings, first read after a write', { timeout: 240_000 }, () => {
  let registry: RunningRegistry;
  let aliceToken: string;
  let bobToken: string;

  before(async () => {
    registry = await startRegistry({
      editConfig: (config) => {
        config.packages = {
          '@secret/*': { access: 'alice', publish: 'alice', unpublish: 'alice' },
          ...(config.packages as Record<string, unknown>),
        };
      },
    });
    aliceToken = await addUser(registry, 'alice', PASSWORD);
    bobToken = await addUser(registry, 'bob', PASSWORD);
    await publishEach(registry.url, aliceToken, [
      ['@secret/pkg', LONG],
      ['other-pkg', LONG],
      ['@mycompany/fast', LONG],
    ]);
  });
  after(async () => {
    await registry?.stop();
  });

  test('17.1 a restricted package warmed by its reader: anonymous 401, another user 403, a token limited to another package 403', async () => {
    const path = '/@secret%2fpkg';
    const warmed = await warm(registry, path, { token: aliceToken });
    assert.equal(JSON.parse(warmed.decoded.toString()).name, '@secret/pkg');
    const alice = createClientDir(registry, { token: aliceToken });
    const created = await alice.npm(['token', 'create', `--password=${PASSWORD}`, '--json', '--packages=other-pkg', '--packages-and-scopes-permission=read-only']);
    assert.equal(created.code, 0, created.stderr);
    const limited = (JSON.parse(created.stdout) as { token: string }).token;
    for (let round = 0; round < 2; round++) {
      // twice: the access memo must not turn a refusal into a permission (or the other way)
      const anonymous = await raw(registry, path);
      assert.equal(anonymous.status, 401, anonymous.decoded.toString());
      const bob = await raw(registry, path, { token: bobToken });
      assert.equal(bob.status, 403, bob.decoded.toString());
      const other = await raw(registry, path, { token: limited });
      assert.equal(other.status, 403, other.decoded.toString());
      for (const answer of [anonymous, bob, other]) assert.doesNotMatch(answer.decoded.toString(), /fast path fast path/, 'no byte of the document');
      // the tarball too (held in memory after the first read)
      const tarball = `/@secret/pkg/-/pkg-1.0.0.tgz`;
      assert.equal((await raw(registry, tarball, { token: aliceToken })).status, 200);
      assert.equal((await raw(registry, tarball)).status, 401);
      assert.equal((await raw(registry, tarball, { token: bobToken })).status, 403);
      assert.equal((await raw(registry, tarball, { token: limited })).status, 403);
    }
    // the limited token still reads its own package, and the cache is still warm for alice
    assert.equal((await raw(registry, '/other-pkg', { token: limited })).status, 200);
    assert.equal((await raw(registry, path, { token: aliceToken })).headers[CACHE_HEADER], 'hit');
  });

  test('17.2 If-None-Match → 304 with the ETag; HEAD → headers only', async () => {
    const path = '/@mycompany%2ffast';
    const full = await warm(registry, path);
    const etag = full.headers.etag as string;
    assert.ok(etag);
    const notModified = await raw(registry, path, { headers: { 'if-none-match': etag } });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.headers.etag, etag);
    assert.equal(notModified.body.length, 0);
    const changed = await raw(registry, path, { headers: { 'if-none-match': '"something-else"' } });
    assert.equal(changed.status, 200);
    assert.deepEqual(changed.decoded, full.decoded);
    const head = await raw(registry, path, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers.etag, etag);
    assert.equal(head.headers['content-type'], full.headers['content-type']);
    assert.equal(head.headers['content-length'], String(full.body.length));
  });

  test('17.3 gzip, br and identity decode to the same bytes; abbreviated and full are distinct entries', async () => {
    const path = '/@mycompany%2ffast';
    const identity = await warm(registry, path, { headers: { 'accept-encoding': 'identity' } });
    assert.equal(identity.headers['content-encoding'], undefined);
    const gzip = await warm(registry, path, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(gzip.headers['content-encoding'], 'gzip');
    const br = await warm(registry, path, { headers: { 'accept-encoding': 'br' } });
    assert.equal(br.headers['content-encoding'], 'br');
    for (const answer of [gzip, br]) {
      assert.deepEqual(answer.decoded, identity.decoded);
      assert.equal(answer.headers.etag, identity.headers.etag);
      assert.match(String(answer.headers.vary), /Accept-Encoding/i);
      assert.equal(answer.headers['content-length'], String(answer.body.length));
    }
    const abbreviated = await warm(registry, path, { headers: { accept: ABBREVIATED, 'accept-encoding': 'gzip' } });
    assert.match(String(abbreviated.headers['content-type']), /application\/vnd\.npm\.install-v1\+json/);
    assert.notEqual(abbreviated.headers.etag, identity.headers.etag);
    const short = JSON.parse(abbreviated.decoded.toString()) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const long = JSON.parse(identity.decoded.toString()) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal(short.description, undefined, 'the abbreviated document has no description');
    assert.equal(long.versions['1.0.0'].description, LONG.description);
    // and the full document is still the full one after the abbreviated entry was made
    assert.deepEqual((await warm(registry, path)).decoded, identity.decoded);
  });

  test('17.4 a publish then an immediate GET never serves the old document', async () => {
    const path = '/@mycompany%2ffast';
    for (let minor = 1; minor <= 4; minor++) {
      await warm(registry, path);
      await warm(registry, path, { headers: { accept: ABBREVIATED, 'accept-encoding': 'br' } });
      const version = `1.${minor}.0`;
      const published = await publishRaw(registry.url, aliceToken, '@mycompany/fast', version, { extra: LONG });
      assert.equal(published.status, 201, published.text);
      const full = JSON.parse((await raw(registry, path)).decoded.toString()) as { versions: Record<string, unknown>; 'dist-tags': Record<string, string> };
      assert.ok(version in full.versions, `${version} in the first full read`);
      assert.equal(full['dist-tags'].latest, version);
      const short = JSON.parse((await raw(registry, path, { headers: { accept: ABBREVIATED, 'accept-encoding': 'br' } })).decoded.toString()) as { versions: Record<string, unknown> };
      assert.ok(version in short.versions, `${version} in the first abbreviated read`);
    }
  });
  test('17.9 the first GET after a publish (rendered by the fast path, not from the cache) answers what the full path answers, byte for byte', async () => {
    const path = '/@mycompany%2ffast';
    const shapes: { what: string; method?: string; headers: Record<string, string>; length: boolean }[] = [
      { what: 'full', headers: {}, length: true },
      { what: 'abbreviated, gzip', headers: { accept: ABBREVIATED, 'accept-encoding': 'gzip' }, length: false },
      { what: 'full, br', headers: { 'accept-encoding': 'br' }, length: false },
      { what: 'X-Forwarded-Proto: https', headers: { 'x-forwarded-proto': 'https' }, length: true },
      { what: 'another Host', headers: { host: `localhost:${registry.port}` }, length: true },
      { what: 'HEAD', method: 'HEAD', headers: {}, length: true },
    ];
    const headerNames = ['content-type', 'content-encoding', 'etag', 'vary', 'access-control-allow-origin', 'x-powered-by'];
    let minor = 0;
    const published = async (): Promise<string> => {
      const version = `3.${minor++}.0`;
      const answer = await publishRaw(registry.url, aliceToken, '@mycompany/fast', version, { extra: LONG });
      assert.equal(answer.status, 201, answer.text);
      return version;
    };
    for (const shape of shapes) {
      let compared = false;
      // each round publishes again: the comparison is only a comparison while the new revision is in no cache entry
      for (let attempt = 0; attempt < 5 && !compared; attempt++) {
        const version = await published();
        // `Cache-Control: no-cache` is never taken by the fast path: Verdaccio renders it (inside the racy window nothing is recorded)
        const full = await raw(registry, path, { method: shape.method, headers: { ...shape.headers, 'cache-control': 'no-cache' } });
        const fast = await raw(registry, path, { method: shape.method, headers: shape.headers });
        if (fast.headers[CACHE_HEADER] === 'hit') continue; // the window had passed and the full path recorded its answer: not a render
        assert.equal(fast.status, 200, `${shape.what}: ${fast.decoded.toString()}`);
        assert.equal(fast.status, full.status, shape.what);
        for (const name of [...headerNames, ...(shape.length ? ['content-length'] : [])]) assert.equal(fast.headers[name], full.headers[name], `${shape.what}: ${name}`);
        assert.deepEqual(fast.decoded, full.decoded, `${shape.what}: body`);
        if (shape.method !== 'HEAD') {
          const doc = JSON.parse(fast.decoded.toString()) as { versions: Record<string, unknown>; maintainers?: { name: string }[] };
          assert.ok(version in doc.versions, `${shape.what}: ${version} listed`);
          if (shape.what === 'full') assert.ok(doc.maintainers?.some((m) => m.name === 'alice'), 'the maintainers are put back');
        }
        compared = true;
      }
      assert.ok(compared, `${shape.what}: every round came from the cache`);
    }
    // the render's ETag is the one a conditional GET is answered against, on the first GET already
    for (let attempt = 0; attempt < 5; attempt++) {
      await published();
      const full = await raw(registry, path, { headers: { 'cache-control': 'no-cache' } });
      const conditional = await raw(registry, path, { headers: { 'if-none-match': full.headers.etag as string } });
      if (conditional.headers[CACHE_HEADER] === 'hit') continue;
      assert.equal(conditional.status, 304);
      assert.equal(conditional.headers.etag, full.headers.etag);
      return;
    }
    assert.fail('every conditional round came from the cache');
  });

  test('17.6 a token revoked after it warmed the cache is refused on the next hit, packument and tarball alike', async () => {
    const path = '/@secret%2fpkg';
    const alice = createClientDir(registry, { token: aliceToken });
    const created = await alice.npm(['token', 'create', `--password=${PASSWORD}`, '--json']);
    assert.equal(created.code, 0, created.stderr);
    const { token } = JSON.parse(created.stdout) as { token: string };
    const key = decodeJwt(token).jti as string; // what `npm token list` shows as the key
    await warm(registry, path, { token });
    const tarball = '/@secret/pkg/-/pkg-1.0.0.tgz';
    assert.equal((await raw(registry, tarball, { token })).status, 200);
    const revoked = await alice.npm(['token', 'revoke', key]);
    assert.equal(revoked.code, 0, revoked.stderr);
    for (const target of [path, tarball]) {
      const answer = await raw(registry, target, { token });
      assert.equal(answer.status, 401, `${target}: ${answer.decoded.toString()}`);
      assert.doesNotMatch(answer.decoded.toString(), /fast path fast path/, 'no byte of the document');
    }
    // alice's own token still reads it from the cache
    assert.equal((await raw(registry, path, { token: aliceToken })).headers[CACHE_HEADER], 'hit');
  });
});

describe('17.x fast path behind a reverse proxy (server.trustProxy): the client address and protocol are express\'s', { timeout: 240_000 }, () => {
  let registry: RunningRegistry;
  let aliceToken: string;

  before(async () => {
    registry = await startRegistry({
      editConfig: (config) => {
        config.server = { ...(config.server as Record<string, unknown> | undefined), trustProxy: 'loopback' };
        config.packages = { '@secret/*': { access: 'alice', publish: 'alice', unpublish: 'alice' }, ...(config.packages as Record<string, unknown>) };
      },
    });
    aliceToken = await addUser(registry, 'alice', PASSWORD);
    assert.equal((await publishRaw(registry.url, aliceToken, '@secret/proxied', '1.0.0', { extra: LONG })).status, 201);
  });
  after(async () => {
    await registry?.stop();
  });

  test('17.7 a token limited to 10.0.0.0/8 reads a cached packument only when X-Forwarded-For (from a trusted proxy) says 10.x', async () => {
    const path = '/@secret%2fproxied';
    await warm(registry, path, { token: aliceToken });
    const alice = createClientDir(registry, { token: aliceToken });
    const created = await alice.npm(['token', 'create', `--password=${PASSWORD}`, '--json', '--cidr=10.0.0.0/8']);
    assert.equal(created.code, 0, created.stderr);
    const limited = (JSON.parse(created.stdout) as { token: string }).token;
    for (let round = 0; round < 2; round++) {
      const inside = await raw(registry, path, { token: limited, headers: { 'x-forwarded-for': '10.1.2.3' } });
      assert.equal(inside.status, 200, inside.decoded.toString());
      assert.equal(inside.headers[CACHE_HEADER], 'hit');
      for (const forwarded of [undefined, '192.168.7.7', '10.1.2.3, 192.168.7.7']) {
        const outside = await raw(registry, path, { token: limited, headers: forwarded === undefined ? {} : { 'x-forwarded-for': forwarded } });
        assert.notEqual(outside.status, 200, `X-Forwarded-For ${String(forwarded)}: ${outside.decoded.toString()}`);
        assert.doesNotMatch(outside.decoded.toString(), /fast path fast path/, 'no byte of the document');
      }
    }
  });

  test('17.8 X-Forwarded-Proto: https and plain requests are distinct cache entries with their own tarball URLs', async () => {
    const path = '/@secret%2fproxied';
    const plain = await warm(registry, path, { token: aliceToken });
    const https = await warm(registry, path, { token: aliceToken, headers: { 'x-forwarded-proto': 'https' } });
    const tarballOf = (answer: Raw): string => (JSON.parse(answer.decoded.toString()) as { versions: Record<string, { dist: { tarball: string } }> }).versions['1.0.0'].dist.tarball;
    assert.match(tarballOf(plain), /^http:\/\//);
    assert.match(tarballOf(https), /^https:\/\//);
    assert.match(tarballOf(await raw(registry, path, { token: aliceToken })), /^http:\/\//);
  });
});

describe('12.x fast path with an upstream: stale packuments revalidate, OFFLINE serves held copies', { timeout: 240_000 }, () => {
  let upstream: RunningRegistry;
  let relay: Relay;

  before(async () => {
    upstream = await startRegistry();
    const token = await addUser(upstream, 'publisher', 'publisher-password-1');
    for (const name of ['up-stale', 'up-fresh']) {
      const published = await publishRaw(upstream.url, token, name, '1.0.0', { extra: LONG });
      assert.equal(published.status, 201, published.text);
    }
    relay = await startRelay(upstream.url);
  });
  after(async () => {
    await relay?.close();
    await upstream?.stop();
  });

  const proxying = (maxage: string): Promise<RunningRegistry> =>
    startRegistry({
      editConfig: (config) => {
        config.uplinks = { upstream: { url: relay.url, maxage, timeout: '3s' } };
      },
    });

  test('12.f1 past maxage: every GET revalidates with the upstream (not the fast path); OFFLINE then serves the held copy with no upstream request', async () => {
    const ours = await proxying('0s');
    try {
      for (let round = 0; round < 4; round++) {
        const before = relay.count('/up-stale');
        const answer = await raw(ours, '/up-stale');
        assert.equal(answer.status, 200);
        assert.equal(JSON.parse(answer.decoded.toString()).name, 'up-stale');
        assert.equal(relay.count('/up-stale') - before, 1, `round ${round}: one revalidation`);
        await new Promise((resolve) => setTimeout(resolve, RACY_WINDOW_MS + 20));
      }
      const toggled = await run(NODE_BIN, [CONFIG_CLI, '--file', ours.lockbPath, 'toggle', 'OFFLINE'], { env: cleanEnv() });
      assert.equal(toggled.code, 0, toggled.stderr);
      const before = relay.requests.length;
      const held = await warm(ours, '/up-stale');
      assert.equal(JSON.parse(held.decoded.toString()).name, 'up-stale');
      assert.equal((await raw(ours, '/up-stale', { headers: { 'if-none-match': held.headers.etag as string } })).status, 304);
      assert.equal(relay.requests.length, before, `upstream requests while OFFLINE: ${JSON.stringify(relay.requests.slice(before))}`);
    } finally {
      await ours.stop();
    }
  });

  test('12.f2 while fresh: the held copy is answered with no upstream request', async () => {
    const ours = await proxying('10m');
    try {
      await warm(ours, '/up-fresh');
      const before = relay.count('/up-fresh');
      for (let round = 0; round < 3; round++) {
        const answer = await raw(ours, '/up-fresh');
        assert.equal(answer.headers[CACHE_HEADER], 'hit');
      }
      assert.equal(relay.count('/up-fresh'), before);
    } finally {
      await ours.stop();
    }
  });
});

/** What differs between two registries for the same publishes: their URL, times, revisions and signing keys. */
function normalised(text: string, url: string): string {
  return text
    .split(url)
    .join('<url>')
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<time>')
    .replace(/"_rev":\s*"[^"]*"/g, '"_rev":"<rev>"')
    .replace(/"(keyid|sig)": "[^"]*"/g, '"$1": "<signature>"');
}

describe('17.x fast_path: false', { timeout: 240_000 }, () => {
  test('17.5 fast_path: false turns it off (the boot line says so) and the answers are identical', async () => {
    const restrict = (config: Record<string, unknown>): void => {
      config.packages = { '@secret/*': { access: 'alice', publish: 'alice', unpublish: 'alice' }, ...(config.packages as Record<string, unknown>) };
    };
    const on = await startRegistry({ editConfig: restrict });
    const off = await startRegistry({
      editConfig: (config) => {
        restrict(config);
        config.middlewares = { ...(config.middlewares as Record<string, unknown>), 'registry-storage-http': { fast_path: false } };
      },
    });
    try {
      assert.match(off.logs(), /storage-http: fast path off: fast_path: false in config\.yaml/);
      assert.match(on.logs(), /storage-http: fast path on/);
      const seen: string[][] = [];
      for (const registry of [on, off]) {
        const token = await addUser(registry, 'alice', PASSWORD);
        const bob = await addUser(registry, 'bob', PASSWORD);
        for (const name of ['@secret/same', '@mycompany/same']) assert.equal((await publishRaw(registry.url, token, name, '1.0.0', { extra: LONG })).status, 201);
        const rows: string[] = [];
        const describeAnswer = (what: string, answer: Raw): void => {
          const headers = ['content-type', 'content-encoding', 'vary', ...(what.startsWith('head') ? ['content-length'] : []), 'access-control-allow-origin', 'x-powered-by'].map((name) => `${name}=${String(answer.headers[name])}`);
          rows.push(`${what}: ${answer.status} ${headers.join(' ')} ${normalised(answer.decoded.toString(), registry.url)}`);
        };
        const full = await warm(registry, '/@mycompany%2fsame');
        describeAnswer('full', full);
        describeAnswer('gzip', await warm(registry, '/@mycompany%2fsame', { headers: { 'accept-encoding': 'gzip' } }));
        describeAnswer('abbreviated', await warm(registry, '/@mycompany%2fsame', { headers: { accept: ABBREVIATED } }));
        describeAnswer('304', await raw(registry, '/@mycompany%2fsame', { headers: { 'if-none-match': full.headers.etag as string } }));
        describeAnswer('head', await raw(registry, '/@mycompany%2fsame', { method: 'HEAD' }));
        describeAnswer('head gzip', await raw(registry, '/@mycompany%2fsame', { method: 'HEAD', headers: { 'accept-encoding': 'gzip' } }));
        describeAnswer('304 gzip', await raw(registry, '/@mycompany%2fsame', { headers: { 'if-none-match': full.headers.etag as string, 'accept-encoding': 'gzip' } }));
        describeAnswer('304 br', await raw(registry, '/@mycompany%2fsame', { headers: { 'if-none-match': full.headers.etag as string, 'accept-encoding': 'br' } }));
        describeAnswer('br', await warm(registry, '/@mycompany%2fsame', { headers: { 'accept-encoding': 'br' } }));
        describeAnswer('whoami', await raw(registry, '/-/whoami', { token: bob }));
        await warm(registry, '/@secret%2fsame', { token });
        describeAnswer('anonymous', await raw(registry, '/@secret%2fsame'));
        describeAnswer('bob', await raw(registry, '/@secret%2fsame', { token: bob }));
        describeAnswer('tarball', await raw(registry, '/@mycompany/same/-/same-1.0.0.tgz'));
        describeAnswer('tarball again', await raw(registry, '/@mycompany/same/-/same-1.0.0.tgz'));
        seen.push(rows);
      }
      assert.deepEqual(seen[1], seen[0]);
    } finally {
      await on.stop();
      await off.stop();
    }
  });
});

describe('17.x property: whatever a client sends, the fast path answers what the full path answers', { timeout: 240_000 }, () => {
  test('17.10 random methods, paths, Accept, Accept-Encoding, Host, X-Forwarded-Proto, If-None-Match, Range and credentials: the same status, headers and body with the fast path on and off (fast-check, one storage)', async () => {
    const restrict = (config: Record<string, unknown>): void => {
      config.packages = { '@secret/*': { access: 'alice', publish: 'alice', unpublish: 'alice' }, ...(config.packages as Record<string, unknown>) };
    };
    // one storage for both sides: published once, then copied, so every byte (times, _rev,
    // signatures, the JWT secret) is the same and only the fast path differs
    const seed = await startRegistry({ editConfig: restrict });
    let on: RunningRegistry | undefined;
    let off: RunningRegistry | undefined;
    try {
      const alice = await addUser(seed, 'alice', PASSWORD);
      const bob = await addUser(seed, 'bob', PASSWORD);
      await publishEach(seed.url, alice, [
        ['@mycompany/prop', LONG],
        ['prop-small', {}],
        ['@secret/prop', LONG],
      ]);
      await seed.stop();
      const copy = `${seed.dir}-off`;
      cpSync(seed.dir, copy, { recursive: true });
      on = await startRegistry({ dir: seed.dir, editConfig: restrict });
      off = await startRegistry({ dir: copy, editConfig: (config) => (restrict(config), withFastPathOff(config)) });
      const named: Record<string, string> = { alice: `Bearer ${alice}`, bob: `Bearer ${bob}`, 'alice basic': basic('alice', PASSWORD) };
      const paths = [
        '/@mycompany%2fprop',
        '/@mycompany/prop',
        '/@mycompany%2Fprop',
        '/prop-small',
        '/@secret%2fprop',
        '/@mycompany/prop/-/prop-1.0.0.tgz',
        '/@secret/prop/-/prop-1.0.0.tgz',
        '/prop-small/-/prop-small-1.0.0.tgz',
        '/prop-small/-/prop-small-9.9.9.tgz',
        '/no-such-package',
        // spellings: a query, an encoded @, a trailing slash, upper case, the scoped tarball's long form, whoami
        '/@mycompany%2fprop?write=true',
        '/prop-small?x=1',
        '/%40mycompany%2fprop',
        '/prop-small/',
        '/PROP-SMALL',
        '/@mycompany/prop/-/@mycompany/prop-1.0.0.tgz',
        '/prop-small/-/prop-small-1.0.0.tgz?x=1',
        '/-/whoami',
        // one version, by number and by tag (Verdaccio's route, never the fast path's)
        '/prop-small/1.0.0',
        '/prop-small/latest',
        '/@mycompany%2fprop/1.0.0',
        '/@secret%2fprop/latest',
      ];
      const hits = await answersAlike({ on, off, authorization: (_side, credential) => named[credential] ?? credential }, paths, 150);
      assert.ok(hits >= 10, `only ${hits} of the answers came from the fast path's cache`);
    } finally {
      await seed.stop();
      await on?.stop();
      await off?.stop();
    }
  });

  test('12.f3 the same for proxied packages: two registries in front of one upstream, the fast path on and off (fast-check)', async () => {
    const upstream = await startRegistry();
    const sides: { on?: RunningRegistry; off?: RunningRegistry } = {};
    try {
      const publisher = await addUser(upstream, 'publisher', 'publisher-password-1');
      await publishEach(upstream.url, publisher, [
        ['up-prop', LONG],
        ['up-small', {}],
        ['@upscope/prop', LONG],
      ]);
      const proxying = (config: Record<string, unknown>): void => {
        config.uplinks = { upstream: { url: upstream.url, maxage: '10m', timeout: '5s' } };
      };
      sides.on = await startRegistry({ editConfig: proxying });
      sides.off = await startRegistry({ editConfig: (config) => (proxying(config), withFastPathOff(config)) });
      const tokens = { on: {} as Record<string, string>, off: {} as Record<string, string> };
      for (const side of ['on', 'off'] as const) {
        const registry = sides[side] as RunningRegistry;
        tokens[side].alice = `Bearer ${await addUser(registry, 'alice', PASSWORD)}`;
        tokens[side].bob = `Bearer ${await addUser(registry, 'bob', PASSWORD)}`;
        tokens[side]['alice basic'] = basic('alice', PASSWORD);
      }
      const paths = [
        '/up-prop',
        '/up-small',
        '/@upscope%2fprop',
        '/@upscope/prop',
        '/up-prop/-/up-prop-1.0.0.tgz',
        '/up-small/-/up-small-1.0.0.tgz',
        '/@upscope/prop/-/prop-1.0.0.tgz',
        '/up-small/-/up-small-9.9.9.tgz',
        '/up-missing',
        '/up-prop?write=true',
        '/up-prop/1.0.0',
        '/up-small/latest',
      ];
      const hits = await answersAlike(
        { on: sides.on, off: sides.off, authorization: (side, credential) => tokens[side][credential] ?? credential },
        paths,
        200,
      );
      assert.ok(hits >= 10, `only ${hits} of the answers came from the fast path's cache`);
    } finally {
      await sides.on?.stop();
      await sides.off?.stop();
      await upstream.stop();
    }
  });
});
