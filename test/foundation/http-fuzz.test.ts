/**
 * Issue 11 (no request can take the registry down) as a property: random requests of every kind —
 * methods, paths under every route family (packages, tarballs, dist-tags, users, tokens, search,
 * audit, login, dashboard, ops), encodings and traversals in them, query strings, content types,
 * credentials (none, garbage, a user who owns nothing, the owner's read-only token) and bodies (none, random JSON, bytes)
 * — sent to one real registry. Every answer is below 500, the process stays up and answers
 * `/-/ping`, and nothing a client can read changed: no stored file, no index record, no config byte.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { rawRequest } from '../harness/raw-http';
import { addUser, startRegistry, type RunningRegistry } from '../harness/registry';
import { publishRaw, storedFiles } from '../storage/lib/packages';

const RUNS = Number(process.env.HTTP_FUZZ_RUNS ?? 400);

/** What a client can read back or what the registry keeps: stored files and their sizes, registry.lockb, the users. */
function state(registry: RunningRegistry): string {
  const files = [...storedFiles(registry.storageDir)].sort(([a], [b]) => a.localeCompare(b));
  const users = join(registry.dir, 'htpasswd');
  return JSON.stringify({ files, lockb: readFileSync(registry.lockbPath).toString('base64'), users: existsSync(users) ? readFileSync(users, 'utf8') : null });
}

describe('11.x random requests of every kind never reach a 5xx, never stop the registry, change nothing', { timeout: 300_000 }, () => {
  let registry: RunningRegistry;
  const credentials: Record<string, string> = {};

  before(async () => {
    registry = await startRegistry();
    // the first user is the registry's admin (docs/identity.md); the fuzz runs as the ones after it
    await addUser(registry, 'root-admin', 'correct-horse-battery');
    const alice = await addUser(registry, 'alice', 'correct-horse-battery');
    credentials.user = `Bearer ${await addUser(registry, 'mallory', 'correct-horse-battery')}`;
    for (const name of ['fuzz-pkg', '@mycompany/fuzz-scoped']) assert.equal((await publishRaw(registry.url, alice, name, '1.0.0')).status, 201, name);
    const created = await fetch(`${registry.url}/-/npm/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
      body: JSON.stringify({ password: 'correct-horse-battery', readonly: true, cidr_whitelist: [] }),
    });
    const text = await created.text();
    assert.equal(created.status, 201, text);
    // the owner's read-only token: it may read everything of alice's and write nothing
    credentials.readonly = `Bearer ${(JSON.parse(text) as { token: string }).token}`;
  });
  after(async () => {
    await registry?.stop();
  });

  test('11.fuzz every answer < 500, /-/ping still 200, storage, registry.lockb and users unchanged (fast-check)', async () => {
    const segment = fc.oneof(
      fc.constantFrom('fuzz-pkg', '@mycompany', 'fuzz-scoped', '@mycompany%2ffuzz-scoped', '-', 'fuzz-pkg-1.0.0.tgz', '..', '%2e%2e', '%2F', '%00', '%ZZ', '-rev', '1-abc', 'latest', 'dist-tags', 'org.couchdb.user:alice', 'org.couchdb.user:mallory', 'org.couchdb.user:', 'api', 'config', 'packages', 'tokens', 'login', 'bulk', 'audits', 'quick', 'ws', '', '~', '%40', 'a'.repeat(300)),
      fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=:@%-]{1,16}$/),
    );
    const prefix = fc.constantFrom('', '/-', '/-/v1', '/-/npm/v1', '/-/npm/v1/security', '/-/package', '/-/user', '/-/v1/search', '/-/whoami', '/-/ping', '/-/ready', '/-/metrics', '/-/all', '/-/v1/login', '/-/v1/done', '/_auth', '/_dashboard', '/_dashboard/api', '/-/npm/v1/tokens', '/-/npm/v1/oidc');
    const query = fc.option(fc.array(fc.tuple(fc.constantFrom('text', 'size', 'from', 'write', 'q', 'page', 'x', 'sessionId'), fc.stringMatching(/^[A-Za-z0-9%._-]{0,12}$/)), { maxLength: 3 }), { nil: undefined });
    const path = fc.tuple(prefix, fc.array(segment, { maxLength: 5 }), query).map(([head, rest, pairs]) => {
      const joined = `${head}/${rest.join('/')}`;
      return pairs === undefined ? joined : `${joined}?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`;
    });
    const body = fc.oneof(
      fc.constant(undefined),
      fc.jsonValue({ maxDepth: 3 }).map((value) => Buffer.from(JSON.stringify(value) ?? 'null')),
      fc.record({ name: fc.constantFrom('fuzz-pkg', '@mycompany/fuzz-scoped', 'new-pkg'), versions: fc.jsonValue({ maxDepth: 2 }), 'dist-tags': fc.jsonValue({ maxDepth: 1 }), _attachments: fc.jsonValue({ maxDepth: 2 }), password: fc.string() }, { requiredKeys: [] }).map((value) => Buffer.from(JSON.stringify(value))),
      fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
    );
    const sent = fc.record({
      method: fc.constantFrom('GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS'),
      path,
      contentType: fc.constantFrom(undefined, 'application/json', 'application/octet-stream', 'application/x-www-form-urlencoded', 'text/plain', 'application/json; charset=latin1', 'multipart/form-data'),
      credential: fc.constantFrom(undefined, 'user', 'readonly', 'Bearer garbage', 'Basic Z2FyYmFnZQ==', 'Basic YWxpY2U6d3Jvbmc=', 'Bearer '),
      accept: fc.constantFrom(undefined, 'application/json', 'application/vnd.npm.install-v1+json', 'text/html', '*/*'),
      body,
    });
    const before = state(registry);
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(sent, async (one) => {
        const headers: Record<string, string> = {};
        if (one.contentType !== undefined) headers['content-type'] = one.contentType;
        if (one.accept !== undefined) headers.accept = one.accept;
        if (one.credential !== undefined) headers.authorization = credentials[one.credential] ?? one.credential;
        const answer = await rawRequest(registry, { method: one.method, path: one.path, headers, body: one.method === 'GET' || one.method === 'HEAD' ? undefined : one.body, timeoutMs: 10_000 });
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        assert.ok(answer.status >= 100 && answer.status < 500, `${one.method} ${one.path} (${one.credential ?? 'anonymous'}, ${one.contentType ?? 'no type'}): ${answer.status} ${answer.text.slice(0, 300)}`);
      }),
      { numRuns: RUNS },
    );
    assert.equal((await rawRequest(registry, { path: '/-/ping' })).status, 200, 'the registry still answers');
    assert.equal(registry.process.exitCode, null, 'the process is still running');
    // bounded wait: a refused write may still be giving its lock back (one turn after the answer)
    let after = state(registry);
    for (let attempt = 0; attempt < 20 && after !== before; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      after = state(registry);
    }
    assert.equal(after, before, 'nothing changed');
    // the property only means something if the requests reached the routes: more than 404s came back
    assert.ok([...statuses.keys()].some((status) => status !== 404), `statuses: ${JSON.stringify([...statuses])}`);
  });
});
