/**
 * Hostile input against a real registry (fast-check, bounded runs): publish / change / star
 * bodies mutated anywhere, arbitrary JSON, dist-tag bodies, and Host headers. The server must
 * answer every one with a status below 500, never drop the connection, and stay up; what it
 * accepted must still be a well-formed package.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { jsonRequestBody, rawRequest } from '../harness/raw-http';
import { addUser, startRegistry, type RunningRegistry } from '../harness/registry';
import { makeTarball, publishBody, publishRaw, sha1Hex, sha512Base64, useOurStorage } from './lib/packages';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const NAME = '@fuzz/pkg';
const HOSTILE_KEYS = ['..%2f..%2fpkg-1.0.1.tgz', '../pkg-1.0.1.tgz', 'pkg-1.0.1.tgz/..', '%2e%2e', '*', 'pkg-1.0.1.tgz%00', '@fuzz/pkg-1.0.1.tgz', 'pkg-1.0.1.tgz', '__proto__', 'ðŸ’¥-1.0.1.tgz', ''];

interface FuzzRequest {
  method: string;
  path: string;
  body: unknown;
}

/** A valid publish of 1.0.1, then one value replaced at a random place (or a key renamed). */
function mutatedPublish(registryUrl: string): fc.Arbitrary<FuzzRequest> {
  return fc
    .record({
      target: fc.constantFrom('name', '_id', 'versions', 'version', 'meta.name', 'meta.version', 'meta.readme', 'meta.maintainers', 'meta.dist', 'dist.tarball', 'dist.shasum', 'dist.integrity', 'meta.deprecated', 'dist-tags', 'dist-tags.latest', '_attachments', 'attachment', 'attachment.data', 'attachment.length', 'attachment-key', 'users'),
      value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(...HOSTILE_KEYS)),
      key: fc.constantFrom(...HOSTILE_KEYS),
      path: fc.constantFrom(`/${encodeURIComponent(NAME)}`, '/@fuzz/pkg', '/@fuzz%2fpkg/-rev/1-abc', '/@fuzz/pkg/-rev/2-def', '/%40fuzz%2Fpkg'),
    })
    .map(({ target, value, key, path }) => {
      const body = JSON.parse(publishBody(registryUrl, NAME, '1.0.1').body) as Json;
      const meta = body.versions['1.0.1'];
      const file = Object.keys(body._attachments)[0];
      switch (target) {
        case 'version':
          body.versions = { [(() => { try { return String(value); } catch { return "unprintable"; } })()]: meta };
          break;
        case 'attachment-key':
          body._attachments = { [key]: body._attachments[file] };
          break;
        case 'attachment':
          body._attachments[file] = value;
          break;
        default: {
          const [head, tail] = target.split('.');
          const parent = head === 'meta' ? meta : head === 'dist' ? meta.dist : head === 'attachment' ? body._attachments[file] : body;
          const field = head === 'meta' || head === 'dist' || head === 'attachment' ? tail : tail === undefined ? head : tail;
          const holder = head === 'dist-tags' && tail !== undefined ? body['dist-tags'] : parent;
          holder[field] = value;
        }
      }
      return { method: 'PUT', path, body };
    });
}

function otherRequests(): fc.Arbitrary<FuzzRequest> {
  const tag = fc.oneof(fc.constantFrom('latest', 'beta', '1.0.0', 'a%2fb', '__proto__', '-rev'), fc.string({ minLength: 1, maxLength: 8 }).map(encodeURIComponent));
  return fc.oneof(
    fc.record({ method: fc.constant('PUT'), path: fc.constantFrom(`/${encodeURIComponent(NAME)}`, '/@fuzz%2fpkg/-rev/1-a', '/@fuzz%2fnew'), body: fc.jsonValue({ maxDepth: 3 }) }),
    fc.record({ method: fc.constant('PUT'), path: tag.map((t) => `/-/package/${encodeURIComponent(NAME)}/dist-tags/${t}`), body: fc.jsonValue({ maxDepth: 2 }) }),
    fc.record({ method: fc.constant('POST'), path: fc.constant(`/-/package/${encodeURIComponent(NAME)}/dist-tags`), body: fc.jsonValue({ maxDepth: 2 }) }),
    fc.record({ method: fc.constant('DELETE'), path: tag.map((t) => `/-/package/${encodeURIComponent(NAME)}/dist-tags/${t}`), body: fc.constant(undefined) }),
    fc.record({ method: fc.constant('PUT'), path: fc.constant(`/${encodeURIComponent(NAME)}/-rev/1-a`), body: fc.record({ _id: fc.constant(NAME), users: fc.jsonValue({ maxDepth: 2 }) }) }),
  );
}

async function send(registry: RunningRegistry, token: string, item: FuzzRequest): Promise<{ status: number; text: string }> {
  const json = jsonRequestBody(item.body);
  const { status, text } = await rawRequest(registry, { method: item.method, path: item.path, body: json.body, headers: { authorization: `Bearer ${token}`, ...json.headers } });
  return { status, text };
}

describe('hostile publish traffic against a real registry', () => {
  let registry: RunningRegistry;
  let token: string;
  const statuses = new Map<number, number>();

  before(async () => {
    registry = await startRegistry({ editConfig: useOurStorage });
    token = await addUser(registry, 'fuzzer', 'correct-horse-battery');
    const seeded = await publishRaw(registry.url, token, NAME, '1.0.0');
    assert.equal(seeded.status, 201, seeded.text);
  });
  after(async () => {
    console.log(`statuses seen: ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
    await registry?.stop();
  });

  async function check(item: FuzzRequest): Promise<void> {
    let answer: { status: number; text: string };
    try {
      answer = await send(registry, token, item);
    } catch (error) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.fail(`${item.method} ${item.path}: connection dropped (${String(error)}); exit code ${registry.process.exitCode}\n${registry.logs().slice(-2000)}`);
    }
    statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
    assert.ok(answer.status < 500, `${item.method} ${item.path} ${JSON.stringify(item.body)?.slice(0, 400)} → ${answer.status} ${answer.text.slice(0, 300)}`);
    if (answer.status >= 400) assert.equal(typeof (JSON.parse(answer.text) as { error?: unknown }).error, 'string', answer.text);
  }

  test('mutated publish / change documents: never a 5xx, never a dropped connection', async () => {
    await fc.assert(fc.asyncProperty(mutatedPublish(registry.url), check), { numRuns: 250 });
    assert.equal((await fetch(`${registry.url}/-/ping`)).status, 200);
  });

  test('arbitrary JSON to the publish, star and dist-tag routes: never a 5xx', async () => {
    await fc.assert(fc.asyncProperty(otherRequests(), check), { numRuns: 250 });
    assert.equal((await fetch(`${registry.url}/-/ping`)).status, 200);
  });

  test('arbitrary Host headers on packument, version and web routes: never a 5xx, the process lives', async () => {
    const printable = fc.string({ minLength: 1, maxLength: 24 }).filter((s) => /^[\x21-\x7e][\x20-\x7e]*$/.test(s));
    // host:port shapes too: some pass Verdaccio's isHost and then fail its `new URL()` ("u:C7")
    const hostLike = fc.oneof(printable, fc.tuple(fc.stringMatching(/^[a-z0-9._-]{1,12}$/), printable).map(([name, port]) => `${name}:${port}`));
    await fc.assert(
      fc.asyncProperty(hostLike, fc.constantFrom(`/${encodeURIComponent(NAME)}`, '/@fuzz/pkg/1.0.0', '/-/verdaccio/data/sidebar/@fuzz/pkg', '/'), async (host, path) => {
        const { status } = await rawRequest(registry, { path, headers: { host } }).catch((error: unknown) => assert.fail(`Host ${JSON.stringify(host)} ${path}: ${String(error)}; exit code ${registry.process.exitCode}\n${registry.logs().slice(-3000)}`));
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        assert.ok(status < 500, `Host ${JSON.stringify(host)} ${path} → ${status}`);
      }),
      { numRuns: 150 },
    );
    assert.equal((await fetch(`${registry.url}/-/ping`)).status, 200);
  });

  test('afterwards the package is still well-formed and a real publish still works', async () => {
    const tarball = makeTarball(NAME, '2.0.0');
    const next = await publishRaw(registry.url, token, NAME, '2.0.0', { tarball, integrity: `sha512-${sha512Base64(tarball)}`, shasum: sha1Hex(tarball) });
    assert.equal(next.status, 201, next.text);
    const doc = (await (await fetch(`${registry.url}/${encodeURIComponent(NAME)}`)).json()) as Json;
    assert.ok(doc.versions['2.0.0']);
    for (const [version, meta] of Object.entries(doc.versions as Json)) {
      assert.equal(typeof meta, 'object', version);
      assert.match(meta.dist.tarball, new RegExp(`/pkg-${version.replace(/\./g, '\\.')}\\.tgz$`));
      const tgz = await fetch(meta.dist.tarball);
      assert.equal(tgz.status, 200, meta.dist.tarball);
    }
    for (const [tag, version] of Object.entries(doc['dist-tags'] as Json)) assert.ok(doc.versions[version], `dist-tag ${tag} → ${version}`);
    assert.equal(registry.process.exitCode, null);
  });
});
