/**
 * The auth plugin inside a REAL registry (start script + Verdaccio), over HTTP: the issuer's
 * documents, npm's couch login, the token routes, restrictions, rate limiting, revocation,
 * config flips made by another process, restart, and start-up refusal.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SignJWT, UnsecuredJWT, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { ConfigFile, hashRegistryUrl, setEnvFileValue } from '../../plugins/registry-core/index';
import { startRegistry, type RunningRegistry } from '../harness/registry';
import { couchPut, eventually, http, login, useAuthPlugin, whoami } from './helpers';

const PASSWORD = 'correct-horse-battery';

describe('auth plugin over HTTP (real registry)', () => {
  let registry: RunningRegistry;
  let aliceToken: string;

  before(async () => {
    registry = await startRegistry({
      editConfig: (config) => {
        useAuthPlugin()(config);
        // http level: Verdaccio logs every request URL, which is what the token-redaction test needs
        config.log = { type: 'stdout', format: 'pretty', level: 'http' };
      },
    });
    const created = await couchPut(registry, 'alice', PASSWORD);
    assert.equal(created.status, 201, created.text);
    aliceToken = created.body.token as string;
  });
  after(async () => {
    await registry?.stop();
  });

  test('boot timeline names the keys and the issuer; key files are 0600', async () => {
    // first start: the RSA pair is generated off the main thread; the JWKS answer waits for it
    const jwks = await http(registry, 'GET', '/_auth/.well-known/jwks.json');
    assert.equal((jwks.body.keys as unknown[]).length, 2);
    const logs = registry.logs();
    assert.match(logs, /\[boot \+\s*[\d.]+ ms\] keys loaded \(EdDSA signs; EdDSA kid \S+, RS256 kid (\S+|\(generating in the background\)); generated/);
    await eventually(async () => /\[boot \+\s*[\d.]+ ms\] keys generated: EdDSA kid \S+, RS256 kid \S+/.test(registry.logs()), 'the RS256 key line');
    assert.match(logs, /\[boot \+\s*[\d.]+ ms\] issuer http:\/\/localhost:4873\/_auth \(private\), audience registry:ceb6960a/);
    const keysDir = join(registry.dir, 'keys');
    const files = readdirSync(keysDir);
    assert.equal(files.length, 2);
    for (const file of files) assert.equal(statSync(join(keysDir, file)).mode & 0o777, 0o600, file);
  });

  test('a token verifies with an independent jose verifier that only knows the JWKS URL', async () => {
    const discovery = await http(registry, 'GET', '/_auth/.well-known/openid-configuration');
    assert.equal(discovery.status, 200);
    assert.equal(discovery.body.issuer, 'http://localhost:4873/_auth');
    assert.equal(discovery.body.jwks_uri, 'http://localhost:4873/_auth/.well-known/jwks.json');
    assert.equal(discovery.body.token_endpoint, 'http://localhost:4873/_auth/token');
    assert.deepEqual(discovery.body.id_token_signing_alg_values_supported, ['EdDSA', 'RS256']);

    const jwks = createRemoteJWKSet(new URL(`${registry.url}/_auth/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(aliceToken, jwks, {
      issuer: discovery.body.issuer as string,
      audience: 'registry:ceb6960a',
    });
    assert.equal(protectedHeader.alg, 'EdDSA');
    assert.equal(payload.sub, 'alice');
    assert.deepEqual(payload.groups, ['alice', 'registry-admin'], 'the first user is the admin');
    for (const claim of ['iss', 'aud', 'iat', 'exp', 'jti']) assert.ok(payload[claim] !== undefined, claim);
  });

  test('npm couch flow: new user 201, existing user 201, wrong password 409 then 401 on the /-rev/ retry', async () => {
    const bob = await couchPut(registry, 'bob', PASSWORD);
    assert.equal(bob.status, 201, bob.text);
    assert.equal(bob.body.ok, "user 'bob' created");
    assert.equal(await whoami(registry, bob.body.token as string), 'bob');
    assert.deepEqual(decodeJwt(bob.body.token as string).groups, ['bob'], 'not an admin');

    const again = await couchPut(registry, 'bob', PASSWORD);
    assert.equal(again.status, 201, again.text);
    assert.equal(await whoami(registry, again.body.token as string), 'bob');

    const wrong = await couchPut(registry, 'bob', 'not-the-password');
    assert.equal(wrong.status, 409, wrong.text);
    assert.match(wrong.body.error as string, /already exists/);
    const doc = await http(registry, 'GET', '/-/user/org.couchdb.user:bob?write=true');
    assert.equal(doc.status, 200);
    assert.equal(doc.body.name, 'bob');
    assert.equal(typeof doc.body._rev, 'string');
    const retryWrong = await couchPut(registry, 'bob', 'not-the-password', { rev: doc.body._rev as string, basic: ['bob', 'not-the-password'] });
    assert.equal(retryWrong.status, 401, retryWrong.text);
    const retryRight = await couchPut(registry, 'bob', PASSWORD, { rev: doc.body._rev as string, basic: ['bob', PASSWORD] });
    assert.equal(retryRight.status, 201, retryRight.text);
    assert.equal(await whoami(registry, retryRight.body.token as string), 'bob');
  });

  test('bad registrations get a 4xx JSON error and create nothing', async () => {
    const before = readFileSync(join(registry.dir, 'htpasswd'), 'utf8');
    const short = await couchPut(registry, 'carol', 'short');
    assert.equal(short.status, 400);
    assert.match(short.body.error as string, /at least 8 characters/);
    const upper = await couchPut(registry, 'Carol', PASSWORD);
    assert.equal(upper.status, 400);
    assert.match(upper.body.error as string, /lowercase/);
    const reserved = await couchPut(registry, 'registry-admin', PASSWORD);
    assert.equal(reserved.status, 400);
    const mismatch = await http(registry, 'PUT', '/-/user/org.couchdb.user:dave', { body: { name: 'eve', password: PASSWORD } });
    assert.equal(mismatch.status, 400);
    assert.match(mismatch.body.error as string, /does not match/);
    const noPassword = await http(registry, 'PUT', '/-/user/org.couchdb.user:dave', { body: { name: 'dave' } });
    assert.equal(noPassword.status, 400);
    assert.equal(readFileSync(join(registry.dir, 'htpasswd'), 'utf8'), before);
  });

  test('POST /_auth/token: token + expiresAt; 401 for a bad password; 400 for a malformed body', async () => {
    const ok = await http(registry, 'POST', '/_auth/token', { body: { username: 'alice', password: PASSWORD } });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(typeof ok.body.token, 'string');
    const expiresAt = Date.parse(ok.body.expiresAt as string);
    assert.equal(expiresAt, (decodeJwt(ok.body.token as string).exp as number) * 1000);
    assert.equal(ok.headers.get('cache-control'), 'no-store');
    const bad = await http(registry, 'POST', '/_auth/token', { body: { username: 'alice', password: 'nope-nope-nope' } });
    assert.equal(bad.status, 401);
    assert.match(bad.body.error as string, /bad username or password/);
    const malformed = await http(registry, 'POST', '/_auth/token', { body: { user: 'alice' } });
    assert.equal(malformed.status, 400);
    assert.ok(malformed.body.error);
  });

  test('failed logins are rate limited: 429 with Retry-After, even for the right password', async () => {
    assert.equal((await couchPut(registry, 'frank', PASSWORD)).status, 201);
    for (let i = 0; i < 4; i++) {
      const attempt = await http(registry, 'POST', '/_auth/token', { body: { username: 'frank', password: `wrong-${i}-wrong` } });
      assert.equal(attempt.status, 401);
    }
    const fifth = await http(registry, 'POST', '/_auth/token', { body: { username: 'frank', password: 'wrong-5-wrong' } });
    assert.equal(fifth.status, 401);
    const locked = await http(registry, 'POST', '/_auth/token', { body: { username: 'frank', password: PASSWORD } });
    assert.equal(locked.status, 429, locked.text);
    assert.ok(Number(locked.headers.get('retry-after')) > 0, 'Retry-After header');
    assert.match(locked.body.error as string, /too many failed logins/);
    const couch = await couchPut(registry, 'frank', PASSWORD);
    assert.equal(couch.status, 429, 'the couch route shares the limit');
    const basic = await http(registry, 'GET', '/-/whoami', { basic: ['frank', PASSWORD] });
    assert.equal(basic.status, 429, 'Basic auth shares the limit');
    assert.equal(await whoami(registry, await login(registry, 'alice', PASSWORD)), 'alice', 'other users are not affected');
  });

  test("npm profile's password change (Verdaccio's POST /-/npm/v1/user → changePassword) rewrites the htpasswd line", async () => {
    const token = (await couchPut(registry, 'grace', PASSWORD)).body.token as string;
    const wrongOld = await http(registry, 'POST', '/-/npm/v1/user', { token, body: { password: { old: 'not-the-old-one', new: 'brand-new-password' } } });
    assert.equal(wrongOld.status, 401, wrongOld.text);
    const tooShort = await http(registry, 'POST', '/-/npm/v1/user', { token, body: { password: { old: PASSWORD, new: 'short' } } });
    assert.equal(tooShort.status, 400, tooShort.text);
    const changed = await http(registry, 'POST', '/-/npm/v1/user', { token, body: { password: { old: PASSWORD, new: 'brand-new-password' } } });
    assert.equal(changed.status, 200, changed.text);
    assert.equal((await http(registry, 'POST', '/_auth/token', { body: { username: 'grace', password: PASSWORD } })).status, 401);
    assert.equal(await whoami(registry, await login(registry, 'grace', 'brand-new-password')), 'grace');
  });

  test('Basic auth works on any request', async () => {
    const ok = await http(registry, 'GET', '/-/whoami', { basic: ['alice', PASSWORD] });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.username, 'alice');
    const bad = await http(registry, 'GET', '/-/whoami', { basic: ['alice', 'not-it-at-all'] });
    assert.equal(bad.body.username, undefined);
  });

  test('rejected tokens are anonymous (never the claimed user) and protected routes answer 401', async () => {
    const claims = decodeJwt(aliceToken);
    const [header, payload, signature] = aliceToken.split('.');
    const tampered = `${header}.${Buffer.from(JSON.stringify({ ...claims, sub: 'mallory' })).toString('base64url')}.${signature}`;
    const jwks = (await http(registry, 'GET', '/_auth/.well-known/jwks.json')).body.keys as { kid: string; alg: string }[];
    const rsaKid = jwks.find((key) => key.alg === 'RS256')!.kid;
    const hsWithPublicKey = await new SignJWT({ ...claims, sub: 'mallory' })
      .setProtectedHeader({ alg: 'HS256', kid: rsaKid })
      .sign(new TextEncoder().encode(JSON.stringify(jwks[1])));
    const bad: Record<string, string> = {
      'alg none': new UnsecuredJWT({ ...claims, sub: 'mallory' }).encode(),
      'HS256 with the public key': hsWithPublicKey,
      tampered,
      truncated: `${header}.${payload}.${signature.slice(0, 20)}`,
      garbage: 'not-a-token',
      'unknown kid': `${Buffer.from(JSON.stringify({ ...decodeProtectedHeader(aliceToken), kid: 'nope' })).toString('base64url')}.${payload}.${signature}`,
    };
    for (const [name, token] of Object.entries(bad)) {
      const who = await http(registry, 'GET', '/-/whoami', { token });
      assert.equal(who.status, 200, name);
      assert.equal(who.body.username, undefined, `${name}: must not be the claimed user`);
      const tokens = await http(registry, 'GET', '/-/npm/v1/tokens', { token });
      assert.equal(tokens.status, 401, `${name}: protected route`);
      const publish = await http(registry, 'PUT', '/bad-token-package', { token, body: { name: 'bad-token-package', versions: {} } });
      assert.equal(publish.status, 401, `${name}: publish`);
    }
    assert.equal(await whoami(registry, aliceToken), 'alice', 'control: the real token still works');
  });

  test('npm token create/list/revoke routes; read-only and CIDR enforced on every request', async () => {
    const create = (body: Record<string, unknown>) => http(registry, 'POST', '/-/npm/v1/tokens', { token: aliceToken, body: { password: PASSWORD, ...body } });
    const wrongPassword = await http(registry, 'POST', '/-/npm/v1/tokens', { token: aliceToken, body: { password: 'wrong-wrong-wrong' } });
    assert.equal(wrongPassword.status, 401, 'the password is re-checked');
    const anonymous = await http(registry, 'POST', '/-/npm/v1/tokens', { body: { password: PASSWORD } });
    assert.equal(anonymous.status, 401);
    // package/scope limits are honoured now (granular-tokens.test.ts); organisations do not exist here
    const orgs = await create({ orgs: ['x'] });
    assert.equal(orgs.status, 400);
    assert.match(orgs.body.error as string, /no organisations: orgs/);

    const readonly = await create({ packages_and_scopes_permission: 'read-only', name: 'ci-read' });
    assert.equal(readonly.status, 201, readonly.text);
    const readonlyToken = readonly.body.token as string;
    assert.equal(readonly.body.readonly, true);
    assert.equal(decodeJwt(readonlyToken).readonly, true);
    assert.equal(await whoami(registry, readonlyToken), 'alice', 'reads work');
    const write = await http(registry, 'PUT', '/readonly-package', { token: readonlyToken, body: { name: 'readonly-package' } });
    assert.equal(write.status, 403);
    assert.match(write.body.error as string, /read-only/);
    const mint = await http(registry, 'POST', '/-/npm/v1/tokens', { token: readonlyToken, body: { password: PASSWORD } });
    assert.equal(mint.status, 403, 'a read-only token cannot mint a write token');

    const elsewhere = await create({ cidr_whitelist: ['10.0.0.0/8'] });
    assert.equal(elsewhere.status, 201, elsewhere.text);
    const blocked = await http(registry, 'GET', '/-/whoami', { token: elsewhere.body.token as string });
    assert.equal(blocked.status, 403);
    assert.match(blocked.body.error as string, /may not be used from 127\.0\.0\.1/);
    const here = await create({ cidr_whitelist: ['127.0.0.0/8'] });
    assert.equal(await whoami(registry, here.body.token as string), 'alice');

    const list = await http(registry, 'GET', '/-/npm/v1/tokens', { token: aliceToken });
    assert.equal(list.status, 200);
    const objects = list.body.objects as { key: string; token: string; readonly: boolean; cidr_whitelist: string[] | null; name?: string }[];
    const listed = objects.find((entry) => entry.key === readonly.body.key);
    assert.ok(listed, 'the read-only token is listed');
    assert.equal(listed.readonly, true);
    assert.match(String(listed.name), /^ci-read \(token, read-only, expires \d{4}-\d\d-\d\d, (?:never used|last used \d{4}-\d\d-\d\d \d\d:\d\d UTC)\)$/, 'the name, then what the token may do (npm prints only the name)');
    assert.ok(readonlyToken.startsWith(listed.token) && listed.token.length <= 6, 'only the first characters (npm adds the ellipsis)');
    assert.ok(!list.text.includes(readonlyToken), 'never the whole token');
    assert.deepEqual(objects.find((entry) => entry.key === elsewhere.body.key)?.cidr_whitelist, ['10.0.0.0/8']);

    const bobToken = await login(registry, 'bob', PASSWORD);
    const foreign = await http(registry, 'DELETE', `/-/npm/v1/tokens/token/${readonly.body.key as string}`, { token: bobToken });
    assert.equal(foreign.status, 404, "bob cannot revoke alice's token");
    assert.equal(await whoami(registry, readonlyToken), 'alice');
    const selfRevoke = await http(registry, 'DELETE', `/-/npm/v1/tokens/token/${readonly.body.key as string}`, { token: readonlyToken });
    assert.equal(selfRevoke.status, 200, 'a read-only token may revoke itself');
    assert.equal(await whoami(registry, readonlyToken), undefined, 'revoked at once');
    const again = await http(registry, 'GET', '/-/npm/v1/tokens', { token: aliceToken });
    assert.ok(!(again.body.objects as { key: string }[]).some((entry) => entry.key === readonly.body.key));
  });

  test('logout (DELETE /-/user/token/<token>) revokes at once, and the token never reaches the log', async () => {
    const token = await login(registry, 'alice', PASSWORD);
    assert.equal(await whoami(registry, token), 'alice');
    const out = await http(registry, 'DELETE', `/-/user/token/${encodeURIComponent(token)}`, { token });
    assert.equal(out.status, 200, out.text);
    assert.equal(await whoami(registry, token), undefined);
    const garbage = await http(registry, 'DELETE', '/-/user/token/garbage', { token: aliceToken });
    assert.equal(garbage.status, 400);
    await eventually(async () => registry.logs().includes('/-/user/token/[redacted]'), 'the logout request is logged (redacted)');
    const signature = token.split('.')[2];
    assert.ok(!registry.logs().includes(signature), 'no token signature in the logs');
    assert.ok(!registry.logs().includes(aliceToken.split('.')[2]), 'no token signature in the logs');
  });

  test('11.10 logout by another spelling (/-/USER/Token/<token>/) is served, revokes, and its token never reaches the log', async () => {
    const token = await login(registry, 'alice', PASSWORD);
    const out = await http(registry, 'DELETE', `/-/USER/Token/${token}/`, { token });
    assert.equal(out.status, 200, out.text);
    assert.equal(await whoami(registry, token), undefined, 'revoked (Verdaccio\'s logout would only say so)');
    await eventually(async () => registry.logs().includes('/-/USER/Token/[redacted]'), 'the request is logged, redacted');
    assert.ok(!registry.logs().includes(token.split('.')[2]), 'no token signature in the logs');
  });

  test('another process flips PREMIUM_TYPES: new tokens RS256 and back; old tokens keep working', async () => {
    const config = ConfigFile.open(registry.lockbPath);
    try {
      const edToken = await login(registry, 'alice', PASSWORD);
      assert.equal(decodeProtectedHeader(edToken).alg, 'EdDSA');
      await config.toggleFeature('PREMIUM_TYPES');
      let rsaToken = '';
      await eventually(async () => {
        rsaToken = await login(registry, 'alice', PASSWORD);
        return decodeProtectedHeader(rsaToken).alg === 'RS256';
      }, 'RS256 tokens after clearing PREMIUM_TYPES');
      assert.equal(await whoami(registry, rsaToken), 'alice');
      assert.equal(await whoami(registry, edToken), 'alice', 'the EdDSA token issued before still works');
      const jwks = createRemoteJWKSet(new URL(`${registry.url}/_auth/.well-known/jwks.json`));
      assert.equal((await jwtVerify(rsaToken, jwks, { issuer: 'http://localhost:4873/_auth', audience: 'registry:ceb6960a' })).protectedHeader.alg, 'RS256');
      await config.toggleFeature('PREMIUM_TYPES');
      await eventually(async () => decodeProtectedHeader(await login(registry, 'alice', PASSWORD)).alg === 'EdDSA', 'EdDSA again');
      assert.equal(await whoami(registry, rsaToken), 'alice', 'the RS256 token still works');
    } finally {
      config.close();
    }
  });

  test('changing the registry URL (as the dashboard does: .env.local, then the hash) invalidates old tokens', async () => {
    const config = ConfigFile.open(registry.lockbPath);
    const newUrl = 'https://registry.mycompany.com';
    try {
      const before = await login(registry, 'alice', PASSWORD);
      setEnvFileValue(registry.envFile, 'BUN_REGISTRY_URL', newUrl);
      await config.update((fields) => ({ ...fields, registryHash: hashRegistryUrl(newUrl) }));
      await eventually(async () => (await whoami(registry, before)) === undefined, 'old token refused after the URL change');
      const after = await login(registry, 'alice', PASSWORD);
      assert.equal(decodeJwt(after).iss, `${newUrl}/_auth`);
      assert.equal(decodeJwt(after).aud, 'registry:4469efac');
      assert.equal(await whoami(registry, after), 'alice');
      const discovery = await http(registry, 'GET', '/_auth/.well-known/openid-configuration');
      assert.equal(discovery.body.issuer, `${newUrl}/_auth`);
    } finally {
      setEnvFileValue(registry.envFile, 'BUN_REGISTRY_URL', 'http://localhost:4873');
      await config.update((fields) => ({ ...fields, registryHash: hashRegistryUrl('http://localhost:4873') }));
      config.close();
    }
    await eventually(async () => (await whoami(registry, aliceToken)) === 'alice', 'the first token works again once the URL is back');
  });
});

describe('keys and revocations survive a restart', () => {
  test('same JWKS, revoked stays revoked, valid stays valid', async () => {
    let registry = await startRegistry({ editConfig: useAuthPlugin() });
    try {
      const keep = (await couchPut(registry, 'alice', PASSWORD)).body.token as string;
      const revoke = await login(registry, 'alice', PASSWORD);
      const jwksBefore = (await http(registry, 'GET', '/_auth/.well-known/jwks.json')).text;
      assert.equal((await http(registry, 'DELETE', `/-/user/token/${revoke}`, { token: revoke })).status, 200);
      registry = await registry.restart();
      assert.equal((await http(registry, 'GET', '/_auth/.well-known/jwks.json')).text, jwksBefore);
      assert.match(registry.logs(), /keys loaded \(EdDSA signs;.*from /);
      assert.equal(await whoami(registry, keep), 'alice');
      assert.equal(await whoami(registry, revoke), undefined);
      for (const file of readdirSync(join(registry.dir, 'keys'))) assert.equal(statSync(join(registry.dir, 'keys', file)).mode & 0o777, 0o600);
    } finally {
      await registry.stop();
    }
  });
});

describe('start-up refuses to serve without the auth plugin', () => {
  test('an unusable keys folder stops start-up (no silent htpasswd fallback)', async () => {
    const dir = (await import('node:fs')).mkdtempSync(join((await import('node:os')).tmpdir(), 'auth-broken-'));
    writeFileSync(join(dir, 'not-a-folder'), 'x');
    await assert.rejects(
      startRegistry({ dir, editConfig: useAuthPlugin({ keys_dir: './not-a-folder' }), timeoutMs: 30_000 }),
      (error: unknown) => {
        assert.match((error as Error).message, /exited/);
        assert.match((error as Error).message, /auth/);
        return true;
      },
    );
  });

  test('a key file readable by others stops start-up', async () => {
    const registry = await startRegistry({ editConfig: useAuthPlugin() });
    await registry.stop();
    const { chmodSync } = await import('node:fs');
    chmodSync(join(registry.dir, 'keys', 'ed25519.private.jwk.json'), 0o644);
    await assert.rejects(startRegistry({ dir: registry.dir, timeoutMs: 30_000 }), (error: unknown) => {
      assert.match((error as Error).message, /mode 0644/);
      return true;
    });
  });
});
