/**
 * Issue 12 (docs/upstream.md): the registry proxies and caches ONE upstream. The upstream here is
 * a second real registry of ours (the harness) with packages published to it, reached through a
 * real HTTP relay (lib/relay.ts) that counts requests and can go down or alter tarball bytes.
 * Real npm, bun and pnpm install through the registry under test.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CACHE_HEADER, DEBUG_REQUEST_HEADER, PackageIndex } from '../../plugins/registry-core/index';
import { NODE_BIN, PROJECT_ROOT, addUser, cleanEnv, createClientDir, run, startRegistry, type RunningRegistry } from '../harness/registry';
import { makeTarball, publishRaw, sha512Base64, storedFiles } from './lib/packages';
import { rawRequest } from '../harness/raw-http';
import { startRelay, type Relay } from './lib/relay';
import type { PublishedKey } from '../../plugins/registry-core/index';
import { UPSTREAM_CACHE_DIR } from '../../plugins/verdaccio-registry-storage/plugin';

/** The part of pacote's API this test uses (pacote ships no types). */
interface Pacote {
  manifest(spec: string, options: Record<string, unknown>): Promise<{ _id: string; _signatures?: Array<{ keyid: string; sig: string }> }>;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const pacote = require('pacote') as Pacote;

const PNPM_BIN = join(PROJECT_ROOT, 'node_modules', '.bin', 'pnpm');
const CACHE_DIR = UPSTREAM_CACHE_DIR;

interface Tree {
  upstream: RunningRegistry;
  upstreamToken: string;
  relay: Relay;
}

/** The public tree on the upstream: dep-mid depends on dep-leaf; dep-top on dep-mid. */
async function publishPublicTree(registry: RunningRegistry, token: string): Promise<void> {
  const put = async (name: string, version: string, dependencies?: Record<string, string>): Promise<void> => {
    const extra = dependencies ? { dependencies } : undefined;
    const tarball = makeTarball(name, version, dependencies ? { 'package.json': `${JSON.stringify({ name, version, main: 'index.js', license: 'MIT', dependencies }, null, 2)}\n` } : {});
    const result = await publishRaw(registry.url, token, name, version, { tarball, extra });
    assert.equal(result.status, 201, `${name}@${version} on the upstream: ${result.text}`);
  };
  await put('dep-leaf', '1.0.0');
  await put('dep-leaf', '1.1.0');
  await put('dep-mid', '2.0.0', { 'dep-leaf': '^1.0.0' });
  await put('dep-top', '3.0.0', { 'dep-mid': '^2.0.0' });
  for (let i = 0; i < 6; i++) await put(`burst-${i}`, '1.0.0');
  await put('flip-me', '1.0.0');
  await put('flip-me', '1.0.1');
  await put('@mycompany/x', '1.0.0');
  await put('@mycompany/x', '9.9.9');
  await put('@mycompany/only-upstream', '1.0.0');
  await put('shadowed', '1.0.0');
  await put('shadowed', '7.0.0');
  await put('head-first', '1.0.0');
  await put('head-after', '1.0.0');
  await put('warm-leaf', '1.0.0');
  await put('warm-top', '1.0.0', { 'warm-leaf': '^1.0.0' });
}

async function startTree(): Promise<Tree> {
  const upstream = await startRegistry();
  const upstreamToken = await addUser(upstream, 'publisher', 'publisher-password-1');
  await publishPublicTree(upstream, upstreamToken);
  const relay = await startRelay(upstream.url);
  return { upstream, upstreamToken, relay };
}

/** Ours, proxying the relay; maxage 0 unless given: every packument GET revalidates. */
function startProxying(relay: Relay, options: { maxage?: string; timeout?: string; dir?: string } = {}): Promise<RunningRegistry> {
  return startRegistry({
    dir: options.dir,
    editConfig: (config) => {
      config.uplinks = { upstream: { url: relay.url, maxage: options.maxage ?? '0s', timeout: options.timeout ?? '3s' } };
    },
  });
}

/** The registry's log is written asynchronously: wait (bounded) until it says what is expected. */
async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`never happened: ${what}`);
}

function emptyProject(dependencies: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'upstream-project-'));
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, dependencies }, null, 2)}\n`);
  return dir;
}

function installed(project: string, name: string): string | null {
  const path = join(project, 'node_modules', name, 'package.json');
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version : null;
}

async function packument(registry: RunningRegistry, name: string, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, any>; headers: Headers }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const response = await fetch(`${registry.url}/${name.replace('/', '%2f')}`, { headers: { accept: 'application/json', ...headers } });
  const text = await response.text();
  let json = {};
  try {
    json = JSON.parse(text) as object;
  } catch {
    json = { raw: text };
  }
  return { status: response.status, json, headers: response.headers };
}

/** Every file under the cache folder (relative), temp files included. */
function cacheFiles(registry: RunningRegistry): string[] {
  const root = join(registry.storageDir, CACHE_DIR);
  if (!existsSync(root)) return [];
  return [...storedFiles(root).keys()].sort();
}

describe('issue 12: one upstream, proxied and cached', () => {
  let tree: Tree;
  let ours: RunningRegistry;
  let token: string;

  before(async () => {
    tree = await startTree();
    ours = await startProxying(tree.relay);
    token = await addUser(ours, 'alice', 'alice-password-1');
  });

  after(async () => {
    await ours?.stop();
    await tree?.relay.close();
    await tree?.upstream.stop();
  });

  test('12.3 a proxied packument: tarball URLs point at this registry (verdaccio#234: also behind a reverse proxy, X-Forwarded-Proto), no upstream bookkeeping leaks', async () => {
    const direct = await packument(ours, 'dep-leaf');
    assert.equal(direct.status, 200, JSON.stringify(direct.json));
    assert.deepEqual(Object.keys(direct.json.versions).sort(), ['1.0.0', '1.1.0']);
    for (const meta of Object.values<any>(direct.json.versions)) assert.ok(meta.dist.tarball.startsWith(`${ours.url}/dep-leaf/-/`), meta.dist.tarball); // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal(direct.json._upstream, undefined);
    const behind = await packument(ours, 'dep-leaf', { 'x-forwarded-proto': 'https' });
    for (const meta of Object.values<any>(behind.json.versions)) assert.ok(meta.dist.tarball.startsWith(`https://127.0.0.1:${ours.port}/dep-leaf/-/`), meta.dist.tarball); // eslint-disable-line @typescript-eslint/no-explicit-any
  });

  test('13.4 proxied versions keep the upstream\'s signatures, and our /-/npm/v1/keys lists its keys: pacote verifies them through this registry', async () => {
    const keysOf = async (registry: RunningRegistry): Promise<PublishedKey[]> => {
      const answer = await fetch(`${registry.url}/-/npm/v1/keys`);
      assert.equal(answer.status, 200);
      return ((await answer.json()) as { keys: PublishedKey[] }).keys;
    };
    const upstreamKeys = await keysOf(tree.upstream);
    const ourKeys = await keysOf(ours);
    for (const key of upstreamKeys) assert.ok(ourKeys.some((k) => k.keyid === key.keyid), `upstream key ${key.keyid} listed by ours`);
    const upstreamDoc = (await packument(tree.upstream, 'dep-mid')).json;
    const proxied = (await packument(ours, 'dep-mid')).json;
    assert.deepEqual(proxied.versions['2.0.0'].dist.signatures, upstreamDoc.versions['2.0.0'].dist.signatures, 'the upstream signature, unchanged');
    const host = new URL(ours.url).host;
    const manifest = await pacote.manifest('dep-mid@2.0.0', {
      registry: `${ours.url}/`,
      verifySignatures: true,
      [`//${host}/:_keys`]: ourKeys.map((key) => ({ ...key, pemkey: `-----BEGIN PUBLIC KEY-----\n${key.key}\n-----END PUBLIC KEY-----` })),
      cache: mkdtempSync(join(tmpdir(), 'pacote-cache-')),
      preferOnline: true,
    });
    assert.equal(manifest._id, 'dep-mid@2.0.0');
    assert.ok((manifest._signatures ?? []).length > 0, 'verified against a signature');
  });

  test('12.3 GET /:package/:version of a package never fetched before (npm view name@version) is proxied too', async () => {
    const response = await fetch(`${ours.url}/burst-2/1.0.0`, { headers: { accept: 'application/json' } });
    assert.equal(response.status, 200);
    const version = (await response.json()) as { version: string; dist: { tarball: string } };
    assert.equal(version.version, '1.0.0');
    assert.ok(version.dist.tarball.startsWith(`${ours.url}/burst-2/-/`), version.dist.tarball);
  });

  test('12.5 the packument response cache stays on with an upstream: a proxied packument is answered from it', async () => {
    const fresh = await startProxying(tree.relay, { maxage: '10m' });
    try {
      let hit = false;
      for (let attempt = 0; attempt < 30 && !hit; attempt++) {
        const answer = await packument(fresh, 'dep-mid', { [DEBUG_REQUEST_HEADER]: 'cache' });
        assert.equal(answer.status, 200);
        hit = answer.headers.get(CACHE_HEADER) === 'hit';
        if (!hit) await new Promise((resolve) => setTimeout(resolve, 120));
      }
      assert.ok(hit, 'a proxied packument never came from the response cache');
      assert.match(fresh.logs(), /packument cache on/);
      // /-/ready names the upstream the storage part proxies and its last outcome (not config.yaml's view)
      const ready = (await (await fetch(`${fresh.url}/-/ready`)).json()) as { ready: boolean; checks: Record<string, string> };
      assert.equal(ready.ready, true);
      assert.match(ready.checks.upstream, new RegExp(`^proxying ${tree.relay.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}; last answer \\d+ s ago$`));
    } finally {
      await fresh.stop();
    }
  });

  test('12.5 a cold fill\'s answer is recorded at once: the next GET of the package is a cache hit, with the same document (issue 17)', async () => {
    const fresh = await startProxying(tree.relay, { maxage: '10m' });
    try {
      const before = tree.relay.count('/burst-2');
      const cold = await packument(fresh, 'burst-2', { [DEBUG_REQUEST_HEADER]: 'cache' });
      assert.equal(cold.status, 200);
      assert.equal(cold.headers.get(CACHE_HEADER), 'miss', 'the cold fill renders');
      // wait for the durable write behind the answer (the file appears), then GET again at once:
      // the file is inside the racy window, so only the store's vouching for its own write lets
      // the recorded answer be replayed
      const file = join(fresh.storageDir, CACHE_DIR, 'burst-2', 'package.json');
      await eventually(() => existsSync(file), 'the cold fill is written');
      const next = await packument(fresh, 'burst-2', { [DEBUG_REQUEST_HEADER]: 'cache' });
      assert.equal(next.status, 200);
      assert.equal(next.headers.get(CACHE_HEADER), 'hit', 'the first GET after the cold fill is answered from the response cache');
      assert.deepEqual(next.json, cold.json);
      assert.equal(next.headers.get('etag'), cold.headers.get('etag'));
      assert.equal(tree.relay.count('/burst-2') - before, 1, 'one upstream request');
      // a change of the stored file by another writer (an offline tool; new mtime) is seen at once
      const edited = readFileSync(file, 'utf8').replace(/"latest":"1\.0\.0"/, '"latest":"1.0.0","edited":"1.0.0"');
      assert.notEqual(edited, readFileSync(file, 'utf8'), 'the edit changes the file');
      await new Promise((resolve) => setTimeout(resolve, 20)); // another timestamp tick
      writeFileSync(file, edited);
      const after = await packument(fresh, 'burst-2', { [DEBUG_REQUEST_HEADER]: 'cache' });
      assert.notEqual(after.headers.get(CACHE_HEADER), 'hit', 'not replayed (inside its racy window the edited file is not even recorded)');
      assert.equal(after.json['dist-tags'].edited, '1.0.0', 'the edited file is what is served');
    } finally {
      await fresh.stop();
    }
  });

  test('12.3 revalidation sends If-None-Match and a 304 renews the cached copy (verdaccio#6115: a 304 is no error; fetch\'s implicit no-cache would forbid it)', async () => {
    const first = await packument(ours, 'dep-top');
    assert.equal(first.status, 200);
    const before = tree.relay.requests.length;
    const second = await packument(ours, 'dep-top');
    assert.equal(second.status, 200);
    assert.deepEqual(Object.keys(second.json.versions), ['3.0.0']);
    const revalidations = tree.relay.requests.slice(before).filter((item) => item.path === '/dep-top');
    assert.equal(revalidations.length, 1);
    assert.ok(revalidations[0].ifNoneMatch, 'no If-None-Match on the revalidation');
    assert.equal(revalidations[0].status, 304);
    assert.equal(second.headers.get('warning'), null);
  });

  test('12.3 50 concurrent clients, one uncached package → exactly one upstream request', async () => {
    const fresh = await startProxying(tree.relay, { maxage: '10m' });
    try {
      const before = tree.relay.count('/burst-0');
      const answers = await Promise.all(Array.from({ length: 50 }, () => packument(fresh, 'burst-0')));
      for (const answer of answers) assert.equal(answer.status, 200, JSON.stringify(answer.json));
      assert.equal(tree.relay.count('/burst-0') - before, 1);
    } finally {
      await fresh.stop();
    }
  });

  test('12.4 tarballs: verified, stored once, a `cache` index record per cached version', async () => {
    const response = await fetch(`${ours.url}/dep-leaf/-/dep-leaf-1.1.0.tgz`);
    assert.equal(response.status, 200);
    const bytes = Buffer.from(await response.arrayBuffer());
    const original = Buffer.from(await (await fetch(`${tree.upstream.url}/dep-leaf/-/dep-leaf-1.1.0.tgz`)).arrayBuffer());
    assert.ok(bytes.equals(original));
    // the verified tarball's last chunk goes out before its locked commit (docs/upstream.md): poll, bounded
    for (let tries = 0; tries < 100 && !cacheFiles(ours).includes(join('dep-leaf', 'dep-leaf-1.1.0.tgz')); tries++) await new Promise((resolveWait) => setTimeout(resolveWait, 50));
    assert.ok(cacheFiles(ours).includes(join('dep-leaf', 'dep-leaf-1.1.0.tgz')));
    const again = Buffer.from(await (await fetch(`${ours.url}/dep-leaf/-/dep-leaf-1.1.0.tgz`)).arrayBuffer());
    assert.ok(again.equals(original));
    assert.equal(tree.relay.count('/dep-leaf/-/dep-leaf-1.1.0.tgz'), 1);
    const index = PackageIndex.open(ours.lockbPath);
    try {
      let records = index.readAll().filter((record) => record.kind === 'cache' && record.name === 'dep-leaf');
      // appended by the same locked commit, right after the file (bounded poll)
      for (let tries = 0; tries < 100 && records.length === 0; tries++) {
        await new Promise((resolveWait) => setTimeout(resolveWait, 50));
        records = index.readAll().filter((record) => record.kind === 'cache' && record.name === 'dep-leaf');
      }
      assert.equal(records.length, 1);
      assert.equal(records[0].version, '1.1.0');
      assert.equal(records[0].sha512, createHash('sha512').update(original).digest('hex'));
      assert.equal(records[0].detail, tree.relay.url);
    } finally {
      index.close();
    }
  });

  test('12.4 HEAD of a proxied tarball answers as a GET does: a first HEAD fills the cache, one right after a GET waits for its commit; every answer says the Content-Length', async () => {
    const original = (name: string): Promise<Buffer> => fetch(`${tree.upstream.url}/${name}/-/${name}-1.0.0.tgz`).then(async (response) => Buffer.from(await response.arrayBuffer()));
    // nothing held yet: the HEAD is a fill (stored, headers only)
    const first = await rawRequest(ours, { method: 'HEAD', path: '/head-first/-/head-first-1.0.0.tgz' });
    const firstBytes = await original('head-first');
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers['content-length'], String(firstBytes.length));
    assert.equal(first.body.length, 0);
    const got = await rawRequest(ours, { path: '/head-first/-/head-first-1.0.0.tgz' });
    assert.ok(got.body.equals(firstBytes));
    assert.equal(tree.relay.count('/head-first/-/head-first-1.0.0.tgz'), 1, 'the HEAD stored it: one upstream download');
    // a GET that fills it, then at once a HEAD and a GET (the commit may still be running: they wait for it)
    const fill = await rawRequest(ours, { path: '/head-after/-/head-after-1.0.0.tgz' });
    const afterBytes = await original('head-after');
    assert.equal(fill.headers['content-length'], String(afterBytes.length), 'a fill streams with the upstream\'s length');
    assert.ok(fill.body.equals(afterBytes));
    const [head, get] = await Promise.all([
      rawRequest(ours, { method: 'HEAD', path: '/head-after/-/head-after-1.0.0.tgz' }),
      rawRequest(ours, { path: '/head-after/-/head-after-1.0.0.tgz' }),
    ]);
    assert.equal(head.status, 200, head.text);
    assert.equal(head.headers['content-length'], String(afterBytes.length));
    assert.ok(get.body.equals(afterBytes));
    assert.equal(tree.relay.count('/head-after/-/head-after-1.0.0.tgz'), 1);
  });

  test('12.4 concurrent tarball fills: one `cache` record per version, each exactly once (records of fills that commit together share one registry.lockb append)', async () => {
    const fresh = await startProxying(tree.relay, { maxage: '10m' });
    const names = Array.from({ length: 6 }, (_, i) => `burst-${i}`);
    const index = PackageIndex.open(fresh.lockbPath);
    try {
      const answers = await Promise.all(names.map((name) => fetch(`${fresh.url}/${name}/-/${name}-1.0.0.tgz`).then(async (response) => ({ status: response.status, bytes: Buffer.from(await response.arrayBuffer()) }))));
      for (const answer of answers) assert.equal(answer.status, 200);
      const cached = (): string[] => index.readAll().filter((record) => record.kind === 'cache').map((record) => `${record.name}@${record.version}`).sort();
      for (let tries = 0; tries < 100 && cached().length < names.length; tries++) await new Promise((resolveWait) => setTimeout(resolveWait, 50));
      await new Promise((resolveWait) => setTimeout(resolveWait, 200)); // a duplicate would show up by now
      assert.deepEqual(cached(), names.map((name) => `${name}@1.0.0`).sort());
      for (const [i, name] of names.entries()) {
        const record = index.readAll().find((item) => item.kind === 'cache' && item.name === name);
        assert.equal(record?.sha512, createHash('sha512').update(answers[i].bytes).digest('hex'), `${name}: the record names the bytes served`);
      }
    } finally {
      index.close();
      await fresh.stop();
    }
  });

  test('12.4 an upstream that alters tarball bytes: refused (HEAD and GET), the client gets an error, nothing stored', async () => {
    await packument(ours, 'flip-me');
    tree.relay.mode = 'flip';
    try {
      // a HEAD sends its headers only for verified bytes: the refusal is a clean 502
      const head = await rawRequest(ours, { method: 'HEAD', path: '/flip-me/-/flip-me-1.0.0.tgz' });
      assert.equal(head.status, 502);
      assert.equal(head.headers['content-length'], undefined, 'not the tarball\'s length');
      // a tarball that arrives in one chunk is refused before anything is sent: a whole JSON 502
      // (framed by its own length, not the tarball's)
      const small = await rawRequest(ours, { path: '/flip-me/-/flip-me-1.0.0.tgz', timeoutMs: 5_000 });
      assert.equal(small.status, 502, small.text);
      assert.match((JSON.parse(small.text) as { error: string }).error, /refused flip-me@1\.0\.0 from the upstream/);
      let failed = false;
      try {
        const response = await fetch(`${ours.url}/flip-me/-/flip-me-1.0.0.tgz`);
        if (response.status !== 200) failed = true;
        else await response.arrayBuffer(); // a destroyed response rejects here
      } catch {
        failed = true;
      }
      assert.ok(failed, 'altered bytes were delivered as a complete download');
      assert.ok(!cacheFiles(ours).some((file) => file.includes('flip-me-1.0.0')), `stored: ${cacheFiles(ours).join(', ')}`);
      await eventually(() => /refused flip-me@1\.0\.0 from the upstream: .*sha512/.test(ours.logs()), `the refusal is logged: ${ours.logs().slice(-1500)}`);
    } finally {
      tree.relay.mode = 'pass';
    }
    const good = await fetch(`${ours.url}/flip-me/-/flip-me-1.0.0.tgz`);
    assert.equal(good.status, 200);
    const bytes = Buffer.from(await good.arrayBuffer());
    const meta = (await packument(tree.upstream, 'flip-me')).json.versions['1.0.0'];
    assert.equal(`sha512-${sha512Base64(bytes)}`, meta.dist.integrity);
  });

  test('12.2 a local @mycompany/x never shows an upstream version; a local scope is never asked upstream', async () => {
    const local = await publishRaw(ours.url, token, '@mycompany/x', '1.0.0', { tarball: makeTarball('@mycompany/x', '1.0.0', { 'index.js': 'module.exports = "local";\n' }) });
    assert.equal(local.status, 201, local.text);
    const answer = await packument(ours, '@mycompany/x');
    assert.deepEqual(Object.keys(answer.json.versions), ['1.0.0']);
    const bytes = Buffer.from(await (await fetch(`${ours.url}/@mycompany/x/-/x-1.0.0.tgz`)).arrayBuffer());
    assert.ok(bytes.equals(local.tarball));
    const missing = await packument(ours, '@mycompany/only-upstream');
    assert.equal(missing.status, 404);
    assert.equal(tree.relay.requests.filter((item) => item.path.includes('mycompany')).length, 0);
  });

  test('12.2 a local unscoped package that also exists upstream: only the local versions, the upstream never asked again', async () => {
    const local = await publishRaw(ours.url, token, 'shadowed', '1.0.0');
    assert.equal(local.status, 201, local.text);
    const before = tree.relay.count('/shadowed');
    const answer = await packument(ours, 'shadowed');
    assert.deepEqual(Object.keys(answer.json.versions), ['1.0.0']);
    assert.equal(tree.relay.count('/shadowed'), before);
    const bytes = Buffer.from(await (await fetch(`${ours.url}/shadowed/-/shadowed-1.0.0.tgz`)).arrayBuffer());
    assert.ok(bytes.equals(local.tarball));
  });

  test('12.7 registry warm <package-lock.json>: everything it names is cached; the upstream stops and a fresh project still installs', async () => {
    // the lockfile is written by real npm against the upstream itself: ours has never seen these packages
    const lockProject = emptyProject({ 'warm-top': '1.0.0' });
    const writer = createClientDir(tree.upstream);
    const locked = await writer.npm(['install', '--package-lock-only', '--no-audit', '--no-fund'], { cwd: lockProject });
    assert.equal(locked.code, 0, locked.stderr);
    const before = tree.relay.count('/warm-leaf');
    assert.equal(before, 0, 'not fetched through ours yet');
    const warmed = await run(NODE_BIN, [join(PROJECT_ROOT, 'bin', 'registry.js'), 'warm', join(lockProject, 'package-lock.json'), '--registry', ours.url], { env: cleanEnv(), timeoutMs: 60_000 });
    assert.equal(warmed.code, 0, `${warmed.stdout}\n${warmed.stderr}`);
    assert.match(warmed.stdout, /\b2 fetched, 0 already cached, 0 failed/);
    assert.ok(tree.relay.count('/warm-leaf') > 0, 'warm went through ours to the upstream');
    tree.relay.mode = 'down';
    try {
      const project = emptyProject({ 'warm-top': '1.0.0' });
      const npm = await createClientDir(ours).npm(['install', '--no-audit', '--no-fund'], { cwd: project });
      assert.equal(npm.code, 0, npm.stderr);
      assert.deepEqual([installed(project, 'warm-top'), installed(project, 'warm-leaf')], ['1.0.0', '1.0.0']);
    } finally {
      tree.relay.mode = 'pass';
    }
  });

  test('12 acceptance: publish a package with public dependencies, npm/bun/pnpm install it with only this registry; then the upstream stops and fresh clients install again', async () => {
    const app = await publishRaw(ours.url, token, '@mycompany/app', '1.0.0', { extra: { dependencies: { 'dep-top': '^3.0.0' } } });
    assert.equal(app.status, 201, app.text);
    const client = createClientDir(ours);
    const npmProject = emptyProject({ '@mycompany/app': '1.0.0' });
    const npm = await client.npm(['install', '--no-audit', '--no-fund'], { cwd: npmProject });
    assert.equal(npm.code, 0, npm.stderr);
    assert.deepEqual([installed(npmProject, 'dep-top'), installed(npmProject, 'dep-mid'), installed(npmProject, 'dep-leaf')], ['3.0.0', '2.0.0', '1.1.0']);
    const bunProject = emptyProject({ '@mycompany/app': '1.0.0' });
    const bun = await client.bun(['install'], { cwd: bunProject });
    assert.equal(bun.code, 0, bun.stderr);
    assert.equal(installed(bunProject, 'dep-leaf'), '1.1.0');
    {
      assert.ok(existsSync(PNPM_BIN), 'pnpm is a dev dependency (npm ci installs it)');
      const pnpmProject = emptyProject({ '@mycompany/app': '1.0.0' });
      const pnpmHome = mkdtempSync(join(tmpdir(), 'pnpm-home-'));
      const pnpm = await run(PNPM_BIN, ['install', `--registry=${ours.url}/`, `--store-dir=${join(pnpmHome, 'store')}`, '--config.node-linker=hoisted'], {
        cwd: pnpmProject,
        env: cleanEnv({ HOME: pnpmHome, npm_config_registry: `${ours.url}/` }),
      });
      assert.equal(pnpm.code, 0, `${pnpm.stdout}\n${pnpm.stderr}`);
      // pnpm may prefer an older matching version (its release-age / resolution settings): any ^1 from the upstream tree
      assert.match(installed(pnpmProject, 'dep-leaf') ?? 'missing', /^1\.[01]\.0$/, 'pnpm: dep-leaf');
      assert.equal(installed(pnpmProject, 'dep-top'), '3.0.0', 'pnpm: dep-top');
    }

    tree.relay.mode = 'down';
    try {
      const offlineClient = createClientDir(ours);
      const again = emptyProject({ '@mycompany/app': '1.0.0' });
      const npmAgain = await offlineClient.npm(['install', '--no-audit', '--no-fund'], { cwd: again });
      assert.equal(npmAgain.code, 0, npmAgain.stderr);
      assert.equal(installed(again, 'dep-leaf'), '1.1.0');
      const bunAgain = emptyProject({ '@mycompany/app': '1.0.0' });
      const bun2 = await offlineClient.bun(['install'], { cwd: bunAgain });
      assert.equal(bun2.code, 0, bun2.stderr);
      assert.equal(installed(bunAgain, 'dep-mid'), '2.0.0');
      const stale = await packument(ours, 'dep-top');
      assert.equal(stale.status, 200);
      assert.match(stale.headers.get('warning') ?? '', /^110 /);
      await eventually(() => /dep-top: the upstream is unreachable .*serving the cached copy/.test(ours.logs()), 'the stale answer is logged');
      const uncached = await packument(ours, 'burst-5');
      assert.ok([502, 504].includes(uncached.status), `${uncached.status}`);
      assert.match(String(uncached.json.error), /burst-5 is not held by this registry and the upstream/);
    } finally {
      tree.relay.mode = 'pass';
    }
  });
});

const CONFIG_CLI = join(PROJECT_ROOT, 'build', 'scripts', 'config-cli.js');

describe('issue 12: OFFLINE, crashes during cache fills, start-up without a usable upstream', () => {
  let tree: Tree;

  before(async () => {
    tree = await startTree();
  });

  after(async () => {
    await tree?.relay.close();
    await tree?.upstream.stop();
  });

  test('12.6 OFFLINE set → zero upstream requests; held packages still served, the rest a 404 naming OFFLINE', async () => {
    const ours = await startProxying(tree.relay);
    try {
      assert.equal((await packument(ours, 'dep-leaf')).status, 200);
      assert.equal((await fetch(`${ours.url}/dep-leaf/-/dep-leaf-1.0.0.tgz`)).status, 200);
      const toggled = await run(NODE_BIN, [CONFIG_CLI, '--file', ours.lockbPath, 'toggle', 'OFFLINE'], { env: cleanEnv() });
      assert.equal(toggled.code, 0, toggled.stderr);
      // the registry sees another process's config write within 100 ms (core watcher)
      await new Promise((resolve) => setTimeout(resolve, 300));
      const before = tree.relay.requests.length;
      const held = await packument(ours, 'dep-leaf');
      assert.equal(held.status, 200);
      assert.equal((await fetch(`${ours.url}/dep-leaf/-/dep-leaf-1.0.0.tgz`)).status, 200);
      const missing = await packument(ours, 'burst-1');
      assert.equal(missing.status, 404);
      assert.match(String(missing.json.error), /OFFLINE/);
      const missingTarball = await fetch(`${ours.url}/dep-leaf/-/dep-leaf-1.1.0.tgz`);
      assert.equal(missingTarball.status, 404);
      assert.match(((await missingTarball.json()) as { error: string }).error, /OFFLINE/);
      assert.equal(tree.relay.requests.length, before, `upstream requests while OFFLINE: ${JSON.stringify(tree.relay.requests.slice(before))}`);
    } finally {
      await ours.stop();
    }
  });

  test('12.4 kill -9 during cache fills: after a restart nothing torn is ever served, and every held tarball matches its integrity', async () => {
    const ours = await startProxying(tree.relay, { timeout: '20s' });
    tree.relay.mode = 'slow';
    const names = Array.from({ length: 6 }, (_, i) => `burst-${i}`);
    try {
      for (const name of names.slice(0, 3)) assert.equal((await packument(ours, name)).status, 200);
      // tarball fills in flight (the relay drips their bytes), packument fills racing them
      const inflight = [
        ...names.slice(0, 3).map((name) => fetch(`${ours.url}/${name}/-/${name}-1.0.0.tgz`).then((r) => r.arrayBuffer()).catch(() => null)),
        ...names.slice(3).map((name) => fetch(`${ours.url}/${name}`).then((r) => r.text()).catch(() => null)),
      ];
      // kill while a fill is provably half-written: its temp file exists. A slow tarball fill keeps
      // its temp for ≥ 600 ms (the relay delays every chunk and the end by 300 ms), so a 5 ms poll
      // cannot miss it; the 10 s bound covers a loaded machine where the fill starts late.
      let torn = false;
      const deadline = Date.now() + 10_000;
      while (!torn && Date.now() < deadline) {
        torn = cacheFiles(ours).some((file) => file.split('/').pop()!.startsWith('.tmp-'));
        if (!torn) await new Promise((resolve) => setTimeout(resolve, 5));
      }
      assert.ok(torn, 'no cache fill was ever in flight');
      ours.process.kill('SIGKILL');
      await Promise.all(inflight);
    } finally {
      tree.relay.mode = 'pass';
      await ours.stop(); // also when an assertion failed: a running child would keep the test process alive
    }
    const again = await startProxying(tree.relay, { dir: ours.dir, maxage: '10m' });
    try {
      const leftovers = cacheFiles(again).filter((file) => file.split('/').pop()!.startsWith('.tmp-'));
      assert.deepEqual(leftovers, [], 'temp files of the killed fills are swept at start-up');
      await eventually(() => /removed \d+ temp file\(s\) left by an interrupted upstream cache fill/.test(again.logs()), 'the sweep of the killed fill is logged');
      for (const name of names) {
        const answer = await packument(again, name);
        assert.equal(answer.status, 200, `${name}: ${JSON.stringify(answer.json)}`);
        const response = await fetch(`${again.url}/${name}/-/${name}-1.0.0.tgz`);
        assert.equal(response.status, 200);
        const bytes = Buffer.from(await response.arrayBuffer());
        assert.equal(`sha512-${sha512Base64(bytes)}`, answer.json.versions['1.0.0'].dist.integrity, `${name}: served bytes match the integrity`);
      }
    } finally {
      await again.stop();
    }
  });

  test('12.3 an upstream slower than `timeout`: the cached copy with a Warning, an uncached package a 504', async () => {
    const ours = await startProxying(tree.relay, { timeout: '1s' });
    try {
      assert.equal((await packument(ours, 'dep-mid')).status, 200);
      tree.relay.mode = 'hang';
      const stale = await packument(ours, 'dep-mid');
      assert.equal(stale.status, 200);
      assert.match(stale.headers.get('warning') ?? '', /^110 - "Response is Stale: the upstream did not answer within 1000 ms"$/);
      const uncached = await packument(ours, 'burst-4');
      assert.equal(uncached.status, 504);
      assert.match(String(uncached.json.error), /burst-4 is not held by this registry and the upstream did not answer within 1000 ms/);
    } finally {
      tree.relay.mode = 'pass';
      await ours.stop();
    }
  });

  test('12.1 an unreachable upstream at start: the registry starts; an uncached package is a clear 502', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const ours = await startRegistry({ env: { REGISTRY_UPSTREAM_URL: `http://127.0.0.1:${port}` } });
    try {
      const answer = await packument(ours, 'anything-uncached');
      assert.equal(answer.status, 502);
      assert.match(String(answer.json.error), /anything-uncached is not held by this registry and the upstream is unreachable \(ECONNREFUSED\)/);
    } finally {
      await ours.stop();
    }
  });

  test('12.1 REGISTRY_UPSTREAM_URL=off: no upstream contact, an uncached package is a 404 saying so', async () => {
    const ours = await startRegistry({ env: { REGISTRY_UPSTREAM_URL: 'off' } });
    try {
      const answer = await packument(ours, 'dep-leaf');
      assert.equal(answer.status, 404);
      assert.match(String(answer.json.error), /no upstream \(REGISTRY_UPSTREAM_URL=off\)/);
      assert.match(ours.logs(), /upstream off: REGISTRY_UPSTREAM_URL=off/);
    } finally {
      await ours.stop();
    }
  });

  test('12.1 an upstream that is this registry itself is refused at start-up with a clear message', async () => {
    await assert.rejects(startRegistry({ env: { REGISTRY_UPSTREAM_URL: 'http://localhost:4873/' } }), /refusing the upstream: the upstream http:\/\/localhost:4873 is this registry's own URL/);
  });
});
