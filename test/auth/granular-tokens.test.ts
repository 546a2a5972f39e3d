/**
 * Granular tokens (npm 11 `npm token create --packages/--scopes/--packages-and-scopes-permission/
 * --expires/--cidr`) with REAL npm against a real registry: stored in the token and its record,
 * enforced on every request (reads and writes of other packages are refused), listed by
 * `npm token list`; plus the pure parts (the request→package rule, the restriction rule).
 * Expired tokens are signed with the registry's own key and a past `exp` (no waiting).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { SignJWT, decodeJwt, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import { limitsAllowPackage, packageOfRequest, scopeOf } from '../../plugins/registry-core/request-package';
import { restrictionProblem, type VerifiedToken } from '../../plugins/verdaccio-registry-auth/token-issuer';
import { parseTokenRequest } from '../../plugins/verdaccio-registry-auth/auth-service';
import { createClientDir, startRegistry, writePackage, type ClientDir, type RunningRegistry } from '../harness/registry';
import { couchPut, http, useAuthPlugin, whoami } from './helpers';

const PASSWORD = 'correct-horse-battery';

/** A token of this registry (signed with its key from keys/) with extra claims and an exp an hour ago. */
export async function expiredToken(registry: RunningRegistry, like: string, claims: Record<string, unknown> = {}): Promise<string> {
  const header = decodeProtectedHeader(like);
  const original = decodeJwt(like);
  const file = header.alg === 'EdDSA' ? 'ed25519.private.jwk.json' : 'rsa-2048.private.jwk.json';
  const jwk = JSON.parse(readFileSync(join(registry.dir, 'keys', file), 'utf8')) as JWK;
  const key = await importJWK(jwk, header.alg as string);
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ groups: original.groups, ...claims })
    .setProtectedHeader({ alg: header.alg as string, kid: header.kid as string, typ: 'JWT' })
    .setSubject(original.sub as string)
    .setIssuer(original.iss as string)
    .setAudience(original.aud as string)
    .setIssuedAt(now - 7200)
    .setExpirationTime(now - 3600)
    .setJti(randomUUID().replaceAll('-', ''))
    .sign(key);
}

describe('request → package (pure)', () => {
  const name = fc
    .tuple(fc.option(fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,20}$/), { nil: undefined }), fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,30}$/))
    .map(([scope, bare]) => (scope === undefined ? bare : `@${scope}/${bare}`));

  test('property: every package route spelling npm and Verdaccio use names the package', () => {
    fc.assert(
      fc.property(name, fc.constantFrom('GET', 'PUT', 'DELETE'), (pkg, method) => {
        const escaped = pkg.replace('/', '%2f');
        const escapedUpper = pkg.replace('/', '%2F').replace('@', '%40');
        const paths = [
          `/${escaped}`,
          `/${escapedUpper}`,
          `/${pkg}`,
          `/${escaped}/1.0.0`,
          `/${pkg}/latest`,
          `/${escaped}/-/${pkg.split('/').pop()}-1.0.0.tgz`,
          `/${pkg}/-/${pkg.split('/').pop()}-1.0.0.tgz`,
          `/${escaped}/-rev/3-abc`,
          `/${escaped}/-/x-1.0.0.tgz/-rev/3-abc`,
          `/-/package/${escaped}/dist-tags`,
          `/-/package/${escaped}/dist-tags/beta`,
          `/-/package/${escaped}/collaborators`,
          `/-/verdaccio/data/sidebar/${pkg}`,
          `/-/verdaccio/data/package/readme/${pkg}`,
          `/-/verdaccio/data/package/readme/${pkg}/1.0.0`,
          `/${escaped}?write=true`,
        ];
        return paths.every((path) => {
          const found = packageOfRequest(method, path);
          return found.kind === 'package' && found.name === pkg;
        });
      }),
    );
  });

  test('routes about no package, and malformed escapes', () => {
    for (const path of ['/', '/-/whoami', '/-/v1/search?text=x', '/-/npm/v1/tokens', '/-/user/token/[redacted]', '/_auth/token', '/_dashboard/api/config', '/-/ping', '/-/v1/login']) {
      assert.deepEqual(packageOfRequest('GET', path), { kind: 'none' }, path);
    }
    assert.deepEqual(packageOfRequest('GET', '/%E0%A4%A'), { kind: 'malformed' });
    assert.equal(scopeOf('@s/x'), '@s');
    assert.equal(scopeOf('x'), null);
    assert.equal(limitsAllowPackage({ packages: ['a'], scopes: ['@s'] }, '@s/b'), true);
    assert.equal(limitsAllowPackage({ packages: ['a'], scopes: ['@s'] }, '@sx/b'), false);
    assert.equal(limitsAllowPackage({ packages: ['a'], scopes: [] }, 'ab'), false);
    assert.equal(limitsAllowPackage({ packages: [], scopes: [] }, 'anything'), true);
  });

  test('the restriction rule: one table for package limits, read-only and their mix', () => {
    const token = (extra: Partial<VerifiedToken>): VerifiedToken => ({
      user: 'alice', groups: ['alice'], jti: 'j', alg: 'EdDSA', kid: 'k', issuer: 'i', audience: 'a', expiresAt: Date.now() + 60_000,
      readonly: false, cidr: null, packages: [], scopes: [], generation: 0, trustedPackage: null, ...extra,
    });
    const rows: { token: VerifiedToken; intent: 'read' | 'write'; pkg?: string; code?: string }[] = [
      { token: token({}), intent: 'write', pkg: 'x' },
      { token: token({ packages: ['p'] }), intent: 'write', pkg: 'p' },
      { token: token({ packages: ['p'] }), intent: 'read', pkg: 'p' },
      { token: token({ packages: ['p'] }), intent: 'write', pkg: 'q', code: 'package' },
      { token: token({ packages: ['p'] }), intent: 'read', pkg: 'q', code: 'package' },
      { token: token({ packages: ['p'] }), intent: 'read' },
      { token: token({ packages: ['p'] }), intent: 'write', code: 'package' },
      { token: token({ scopes: ['@s'] }), intent: 'write', pkg: '@s/x' },
      { token: token({ scopes: ['@s'] }), intent: 'write', pkg: 's', code: 'package' },
      { token: token({ packages: ['p'], readonly: true }), intent: 'read', pkg: 'p' },
      { token: token({ packages: ['p'], readonly: true }), intent: 'write', pkg: 'p', code: 'read-only' },
    ];
    for (const row of rows) {
      const use = { peerAddress: '127.0.0.1', intent: row.intent, ...(row.pkg === undefined ? {} : { package: row.pkg }) };
      assert.equal(restrictionProblem(row.token, use)?.code, row.code, JSON.stringify({ ...row, token: [row.token.packages, row.token.scopes, row.token.readonly] }));
    }
  });

  test('token-create body: npm 11 options are parsed; orgs and bad names are refused with 400', () => {
    const parsed = parseTokenRequest({ password: 'p', packages: ['a', 'a', '@s/b'], scopes: ['team', '@ops'], packages_and_scopes_permission: 'read-only', expires: 7, bypass_2fa: true }, 365 * 86_400);
    assert.deepEqual({ packages: parsed.packages, scopes: parsed.scopes, readonly: parsed.readonly, ttl: parsed.ttlSeconds }, { packages: ['a', '@s/b'], scopes: ['@team', '@ops'], readonly: true, ttl: 7 * 86_400 });
    for (const body of [
      { orgs: ['acme'] },
      { orgs_permission: 'read-only' },
      { packages: [''] },
      { packages: [42] },
      { packages: ['has space'] },
      { packages: ['a/b/c'] },
      { scopes: ['@a/b'] },
      { packages_all: true, packages: ['a'] },
      { packages: Array.from({ length: 101 }, (_, i) => `p${i}`) },
    ]) {
      assert.throws(() => parseTokenRequest({ password: 'p', ...body }, 365 * 86_400), (e: unknown) => (e as { status?: number }).status === 400, JSON.stringify(body).slice(0, 80));
    }
  });
});

describe('granular tokens with real npm (real registry)', { timeout: 240_000 }, () => {
  let registry: RunningRegistry;
  let admin: ClientDir;
  let aliceToken: string;

  before(async () => {
    registry = await startRegistry({ editConfig: useAuthPlugin() });
    const created = await couchPut(registry, 'alice', PASSWORD);
    aliceToken = created.body.token as string;
    admin = createClientDir(registry, { token: aliceToken });
    for (const pkg of ['other-pkg', '@other/lib']) {
      const out = await admin.npm(['publish'], { cwd: writePackage(admin.dir, { name: pkg, version: '1.0.0' }) });
      assert.equal(out.code, 0, out.stderr);
    }
  });
  after(async () => {
    await registry?.stop();
  });

  const npmCreate = async (args: string[]): Promise<{ token: string; key: string }> => {
    const out = await admin.npm(['token', 'create', `--password=${PASSWORD}`, '--json', ...args]);
    assert.equal(out.code, 0, out.stderr);
    const result = JSON.parse(out.stdout) as { token: string };
    return { token: result.token, key: decodeJwt(result.token).jti as string };
  };

  test('13.3 acceptance: a token limited to one package publishes it and gets 403 on another (reads too); an expired one gets 401', async () => {
    const { token } = await npmCreate(['--packages=granted-pkg', '--scopes=@team', '--packages-and-scopes-permission=read-write', '--expires=7', '--name=ci', '--cidr=127.0.0.0/8']);
    const claims = decodeJwt(token);
    assert.deepEqual({ packages: claims.packages, scopes: claims.scopes, cidr: claims.cidr }, { packages: ['granted-pkg'], scopes: ['@team'], cidr: ['127.0.0.0/8'] });
    const ci = createClientDir(registry, { token });

    const publish = (name: string, version = '1.0.0') => ci.npm(['publish'], { cwd: writePackage(ci.dir, { name, version }) });
    const granted = await publish('granted-pkg');
    assert.equal(granted.code, 0, granted.stderr);
    assert.equal((await publish('@team/lib')).code, 0, 'a package of a granted scope');
    for (const name of ['another-pkg', 'other-pkg', '@other/lib', 'granted-pkg-2']) {
      const refused = await publish(name, '2.0.0');
      assert.notEqual(refused.code, 0, name);
      assert.match(refused.stderr, /403/, `${name}: ${refused.stderr}`);
      assert.match(refused.stderr, /limited to package granted-pkg and scope @team/);
    }
    // reads of other packages are refused too; its own are fine
    assert.equal((await ci.npm(['view', 'granted-pkg', 'version'])).stdout.trim(), '1.0.0');
    const view = await ci.npm(['view', 'other-pkg', 'version']);
    assert.notEqual(view.code, 0);
    assert.match(view.stderr, /E403/);
    const tarball = await http(registry, 'GET', '/other-pkg/-/other-pkg-1.0.0.tgz', { token });
    assert.equal(tarball.status, 403);
    assert.equal((await http(registry, 'GET', '/@other%2flib', { token })).status, 403);
    // …and through Verdaccio's web UI data routes
    assert.equal((await http(registry, 'GET', '/-/verdaccio/data/sidebar/other-pkg', { token })).status, 403);
    assert.equal((await http(registry, 'GET', '/-/verdaccio/data/package/readme/@other/lib', { token })).status, 403);
    // not about a package: reads work (whoami), writes do not (a new token, a password change)
    assert.equal((await ci.npm(['whoami'])).stdout.trim(), 'alice');
    const mint = await http(registry, 'POST', '/-/npm/v1/tokens', { token, body: { password: PASSWORD } });
    assert.equal(mint.status, 403, mint.text);
    // npm audit POSTs the lockfile: a question, not a write — a limited token is not refused for it
    const audit = await http(registry, 'POST', '/-/npm/v1/security/advisories/bulk', { token, body: { 'granted-pkg': ['1.0.0'] } });
    assert.notEqual(audit.status, 403, audit.text);
    // unlimited tokens are not affected
    assert.equal((await admin.npm(['view', 'other-pkg', 'version'])).stdout.trim(), '1.0.0');

    // expired (signed by the registry's own key, exp an hour ago): 401, whatever its limits
    const expired = await expiredToken(registry, token, { packages: ['granted-pkg'] });
    // (Verdaccio answers whoami for an anonymous caller with 200 and no name; the token's rejection is the point)
    assert.equal(await whoami(registry, expired), undefined, 'not alice');
    const rejected = await http(registry, 'PUT', '/granted-pkg', { token: expired, body: {} });
    assert.equal(rejected.status, 401, rejected.text);
    const late = createClientDir(registry, { token: expired });
    const lateOut = await late.npm(['publish'], { cwd: writePackage(late.dir, { name: 'granted-pkg', version: '3.0.0' }) });
    assert.notEqual(lateOut.code, 0);
    assert.match(lateOut.stderr, /E401|401/);
  });

  test('13.3 a read-only package token reads its package and writes nothing; a token may still revoke itself', async () => {
    const { token, key } = await npmCreate(['--packages=other-pkg', '--packages-and-scopes-permission=read-only']);
    const reader = createClientDir(registry, { token });
    assert.equal((await reader.npm(['view', 'other-pkg', 'version'])).stdout.trim(), '1.0.0');
    const write = await reader.npm(['publish'], { cwd: writePackage(reader.dir, { name: 'other-pkg', version: '9.0.0' }) });
    assert.match(write.stderr, /read-only/);
    const tag = await reader.npm(['dist-tag', 'add', 'other-pkg@1.0.0', 'beta']);
    assert.notEqual(tag.code, 0);
    const revoke = await reader.npm(['token', 'revoke', key]);
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.equal(await whoami(registry, token), undefined, 'revoked');
    assert.equal((await http(registry, 'GET', '/other-pkg', { token })).status, 200, 'a revoked token reads as anonymous (other-pkg is public)');
  });

  test('13.3 npm token list shows name, permission, limits, CIDR, expiry and last use', async () => {
    const { key } = await npmCreate(['--packages=granted-pkg', '--scopes=@team', '--packages-and-scopes-permission=read-only', '--expires=3', '--name=listed', '--cidr=10.0.0.0/8']);
    const list = await admin.npm(['token', 'list']);
    assert.equal(list.code, 0, list.stderr);
    const line = list.stdout.split('\n').find((row) => row.includes(key.slice(0, 6)) && row.includes('listed'));
    assert.ok(line, list.stdout);
    assert.match(line, /listed \(token, read-only, package granted-pkg and scope @team, from 10\.0\.0\.0\/8, expires \d{4}-\d\d-\d\d, never used\)/);
    const json = await http(registry, 'GET', '/-/npm/v1/tokens', { token: aliceToken });
    const row = (json.body.objects as Record<string, unknown>[]).find((item) => item.key === key);
    assert.deepEqual({ packages: row?.packages, scopes: row?.scopes, permission: row?.permission, cidr: row?.cidr_whitelist }, { packages: ['granted-pkg'], scopes: ['@team'], permission: 'read-only', cidr: ['10.0.0.0/8'] });
    assert.equal(typeof row?.expires, 'string');
  });

  test('13.3 orgs are refused with a clear 400 (this registry has no organisations); nothing is created', async () => {
    const before = (await http(registry, 'GET', '/-/npm/v1/tokens', { token: aliceToken })).body.total;
    const out = await admin.npm(['token', 'create', `--password=${PASSWORD}`, '--orgs=acme']);
    assert.notEqual(out.code, 0);
    assert.match(out.stderr, /no organisations/);
    assert.equal((await http(registry, 'GET', '/-/npm/v1/tokens', { token: aliceToken })).body.total, before);
  });
});
