/** The auth plugin's parts on real files: key files, the htpasswd store, the limiter, CIDR lists, token-create bodies. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { calculateJwkThumbprint } from 'jose';
import { parseTokenRequest } from '../../plugins/verdaccio-registry-auth/auth-service';
import { isAuthError } from '../../plugins/verdaccio-registry-auth/errors';
import { KeyRing, loadKeyRing } from '../../plugins/verdaccio-registry-auth/keys';
import { CidrAllowList, normalizeIp, parseCidr } from '../../plugins/verdaccio-registry-auth/network';
import { parseDuration, readPluginSettings } from '../../plugins/verdaccio-registry-auth/plugin-config';
import { FailedLoginLimiter } from '../../plugins/verdaccio-registry-auth/rate-limit';
import { UserStore, usernameProblem } from '../../plugins/verdaccio-registry-auth/users';

const tempDir = (prefix: string): string => mkdtempSync(join(tmpdir(), prefix));

describe('key ring', () => {
  test('first start generates both pairs with mode 0600 in a 0700 folder; kid = RFC 7638 thumbprint (checked with jose)', async () => {
    const dir = join(tempDir('auth-keys-'), 'keys');
    const ring = loadKeyRing(dir);
    assert.equal(ring.created.length, 2);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    for (const file of readdirSync(dir)) assert.equal(statSync(join(dir, file)).mode & 0o777, 0o600, file);
    assert.deepEqual(readdirSync(dir).sort(), ['ed25519.private.jwk.json', 'rsa-2048.private.jwk.json']);
    for (const alg of ['EdDSA', 'RS256'] as const) {
      const key = ring.require(alg);
      assert.equal(key.kid, await calculateJwkThumbprint(key.publicJwk, 'sha256'));
      assert.equal(key.publicJwk.alg, alg);
      assert.equal(key.publicJwk.use, 'sig');
      assert.equal((key.publicJwk as unknown as Record<string, unknown>).d, undefined, 'no private part in the public JWK');
    }
    assert.equal(Buffer.from(ring.require('RS256').publicJwk.n!, 'base64url').length * 8, 2048);
  });

  test('background mode: Ed25519 at once, RSA off the main thread; signingKey and jwks wait for it', async () => {
    const dir = join(tempDir('auth-keys-'), 'keys');
    const ring = KeyRing.open(dir, { background: true });
    assert.ok(ring.byAlg.EdDSA, 'the Ed25519 key is there synchronously');
    const rsa = await ring.signingKey('RS256');
    assert.equal(rsa.alg, 'RS256');
    assert.equal((await ring.jwks()).keys.length, 2);
    assert.equal(ring.created.length, 2);
    for (const file of readdirSync(dir)) assert.equal(statSync(join(dir, file)).mode & 0o777, 0o600, file);
    const again = loadKeyRing(dir);
    assert.equal(again.require('RS256').kid, rsa.kid, 'the background key was persisted');
    assert.equal(again.created.length, 0);
  });

  test('a second start loads the same keys (same kids), generates nothing', () => {
    const dir = join(tempDir('auth-keys-'), 'keys');
    const first = loadKeyRing(dir);
    const second = loadKeyRing(dir);
    assert.equal(second.created.length, 0);
    assert.equal(second.require('EdDSA').kid, first.require('EdDSA').kid);
    assert.equal(second.require('RS256').kid, first.require('RS256').kid);
  });

  test('refuses a key file readable by others, a corrupt key file and a keys path that is a file', () => {
    const dir = join(tempDir('auth-keys-'), 'keys');
    loadKeyRing(dir);
    const edFile = join(dir, 'ed25519.private.jwk.json');
    chmodSync(edFile, 0o644);
    assert.throws(() => loadKeyRing(dir), (error: unknown) => isAuthError(error, 'ERR_KEY_FILE') && /0644.*chmod 600/.test((error as Error).message));
    chmodSync(edFile, 0o600);
    const original = readFileSync(edFile, 'utf8');
    writeFileSync(edFile, '{"kty":"OKP","crv":"Ed25519"}');
    assert.throws(() => loadKeyRing(dir), (error: unknown) => isAuthError(error, 'ERR_KEY_FILE'));
    writeFileSync(edFile, original);
    assert.doesNotThrow(() => loadKeyRing(dir));
    const notAFolder = join(tempDir('auth-keys-'), 'file');
    writeFileSync(notAFolder, 'x');
    assert.throws(() => loadKeyRing(notAFolder), (error: unknown) => isAuthError(error, 'ERR_KEY_FILE'));
  });
});

describe('htpasswd user store', () => {
  const store = (file: string, maxUsers = 10): UserStore => new UserStore({ file, maxUsers, passwordMinLength: 8, bcryptRounds: 4 });

  test('add, verify, keep file order, reject wrong passwords and unknown users', async () => {
    const file = join(tempDir('auth-users-'), 'htpasswd');
    const users = store(file);
    await users.add('alice', 'alice-password');
    await users.add('bob', 'bob-password');
    assert.deepEqual(users.names(), ['alice', 'bob']);
    assert.equal(await users.verify('alice', 'alice-password'), true);
    assert.equal(await users.verify('alice', 'bob-password'), false);
    assert.equal(await users.verify('carol', 'alice-password'), false);
    assert.match(readFileSync(file, 'utf8'), /^alice:\$2b\$04\$[^:]+:autocreated /m);
    assert.equal(statSync(file).mode & 0o777, 0o600);
  });

  test('existing $2y$ (Apache) and {SHA} lines verify; unsupported hashes never match', async () => {
    const file = join(tempDir('auth-users-'), 'htpasswd');
    const bcryptLine = (await import('bcryptjs')).default.hashSync('apache-pass', 4).replace('$2b$', '$2y$');
    const sha = `{SHA}${createHash('sha1').update('sha-password').digest('base64')}`;
    writeFileSync(file, `apache:${bcryptLine}\nlegacy:${sha}\nweird:$apr1$abc$def\n`);
    const users = store(file);
    assert.equal(await users.verify('apache', 'apache-pass'), true);
    assert.equal(await users.verify('legacy', 'sha-password'), true);
    assert.equal(await users.verify('legacy', 'sha-passwore'), false);
    assert.equal(await users.verify('weird', 'anything'), false);
    assert.equal(users.warnings.length, 1);
    await users.changePassword('legacy', 'sha-password', 'new-password-1');
    assert.match(readFileSync(file, 'utf8'), /^legacy:\$2b\$/m, 'a password change rewrites {SHA} as bcrypt');
    assert.match(readFileSync(file, 'utf8'), /^apache:\$2y\$/m, 'other lines are kept');
    assert.equal(await users.verify('legacy', 'new-password-1'), true);
  });

  test('registration rules: names, password policy, duplicates, max_users, closed registration', async () => {
    const file = join(tempDir('auth-users-'), 'htpasswd');
    const users = store(file, 2);
    const code = (expected: string) => (error: unknown) => isAuthError(error) && error.code === expected;
    await assert.rejects(users.add('Alice', 'long-enough'), code('ERR_USER_NAME'));
    await assert.rejects(users.add('a:b', 'long-enough'), code('ERR_USER_NAME'));
    await assert.rejects(users.add('.dot', 'long-enough'), code('ERR_USER_NAME'));
    await assert.rejects(users.add('alice', 'short'), code('ERR_PASSWORD_POLICY'));
    await assert.rejects(users.add('alice', 'x'.repeat(73)), code('ERR_PASSWORD_POLICY'));
    await users.add('alice', 'long-enough');
    await assert.rejects(users.add('alice', 'long-enough'), code('ERR_USER_EXISTS'));
    await users.add('bob', 'long-enough');
    await assert.rejects(users.add('carol', 'long-enough'), code('ERR_REGISTRATION_CLOSED'));
    const closed = store(join(tempDir('auth-users-'), 'htpasswd'), -1);
    await assert.rejects(closed.add('dave', 'long-enough'), code('ERR_REGISTRATION_CLOSED'));
    assert.equal(usernameProblem('fine-name_1'), undefined);
  });

  test('concurrent registrations in one process all land (serialised rewrites)', async () => {
    const file = join(tempDir('auth-users-'), 'htpasswd');
    const users = store(file, 100);
    await Promise.all(Array.from({ length: 8 }, (_, i) => users.add(`user${i}`, `password-${i}`)));
    assert.equal(users.size, 8);
    assert.equal(readFileSync(file, 'utf8').trim().split('\n').length, 8);
  });

  test('an edit of the file by another tool is picked up; a broken file is an error, not an empty store', async () => {
    const file = join(tempDir('auth-users-'), 'htpasswd');
    const users = store(file);
    await users.add('alice', 'long-enough');
    const other = store(file);
    await other.add('bob', 'long-enough');
    assert.equal(users.has('bob'), true);
    writeFileSync(file, 'this is not htpasswd\n');
    assert.throws(() => users.names(), (error: unknown) => isAuthError(error, 'ERR_HTPASSWD'));
  });
});

describe('failed-login limiter', () => {
  test('5 failures lock the (user, ip) pair out; lock-outs double; other pairs unaffected; success clears', () => {
    const limiter = new FailedLoginLimiter({ maxFailures: 5, windowMs: 60_000 });
    const t0 = 1_000_000;
    for (let i = 0; i < 4; i++) assert.equal(limiter.fail('alice', '1.2.3.4', t0 + i), 0);
    assert.equal(limiter.fail('alice', '1.2.3.4', t0 + 4), 60);
    assert.equal(limiter.retryAfter('alice', '1.2.3.4', t0 + 10), 60);
    assert.equal(limiter.retryAfter('alice', '5.6.7.8', t0 + 10), 0);
    assert.equal(limiter.retryAfter('bob', '1.2.3.4', t0 + 10), 0);
    const t1 = t0 + 61_000;
    assert.equal(limiter.retryAfter('alice', '1.2.3.4', t1), 0);
    for (let i = 0; i < 4; i++) limiter.fail('alice', '1.2.3.4', t1 + i);
    assert.equal(limiter.fail('alice', '1.2.3.4', t1 + 5), 120, 'second lock-out doubles');
    limiter.succeed('alice', '1.2.3.4');
    assert.equal(limiter.retryAfter('alice', '1.2.3.4', t1 + 6), 0);
  });

  test('failures spread beyond the window do not lock; the table is bounded', () => {
    const limiter = new FailedLoginLimiter({ maxFailures: 3, windowMs: 1000, maxEntries: 100 });
    for (let i = 0; i < 10; i++) assert.equal(limiter.fail('alice', 'ip', i * 600), 0);
    for (let i = 0; i < 1000; i++) limiter.fail(`user${i}`, 'ip', 0);
    assert.equal(limiter.size, 100);
  });
});

describe('CIDR lists and client IPs', () => {
  test('IPv4 and IPv6 ranges, mapped addresses, refusal of junk', () => {
    const list = new CidrAllowList(['10.0.0.0/8', '192.168.1.1', '2001:db8::/32']);
    assert.deepEqual(list.ranges, ['10.0.0.0/8', '192.168.1.1/32', '2001:db8::/32']);
    assert.ok(list.allows('10.200.1.1'));
    assert.ok(list.allows('::ffff:10.0.0.1'));
    assert.ok(list.allows('2001:db8::1'));
    assert.ok(!list.allows('11.0.0.1'));
    assert.ok(!list.allows('192.168.1.2'));
    assert.ok(!list.allows('not an ip'));
    assert.equal(normalizeIp('::ffff:127.0.0.1'), '127.0.0.1');
    for (const bad of ['10.0.0.0/33', '10.0.0/8', 'abc', '', '10.0.0.0/8/1', '10.0.0.0/-1', 42]) {
      assert.throws(() => parseCidr(bad), (error: unknown) => isAuthError(error, 'ERR_TOKEN_OPTIONS'), String(bad));
    }
  });
});

describe('npm token-create bodies', () => {
  test('npm 11 read-only permission, older readonly flag, cidr, expiry; organisations refused', () => {
    const year = 365 * 86_400;
    assert.equal(parseTokenRequest({ password: 'p', packages_and_scopes_permission: 'read-only' }, year).readonly, true);
    assert.equal(parseTokenRequest({ password: 'p', readonly: true }, year).readonly, true);
    assert.equal(parseTokenRequest({ password: 'p' }, year).readonly, false);
    assert.deepEqual(parseTokenRequest({ password: 'p', cidr_whitelist: ['10.0.0.1'] }, year).cidr, ['10.0.0.1/32']);
    assert.equal(parseTokenRequest({ password: 'p', expires: 30 }, year).ttlSeconds, 30 * 86_400);
    const code = (expected: string) => (error: unknown) => isAuthError(error) && error.code === expected;
    assert.deepEqual(parseTokenRequest({ password: 'p', packages: ['a'] }, year).packages, ['a'], 'package limits are honoured (granular-tokens.test.ts)');
    assert.throws(() => parseTokenRequest({ password: 'p', orgs: ['a'] }, year), code('ERR_TOKEN_OPTIONS'));
    assert.throws(() => parseTokenRequest({ password: 'p', expires: 0 }, year), code('ERR_TOKEN_OPTIONS'));
    assert.throws(() => parseTokenRequest({ password: 'p', expires: 400 }, year), code('ERR_TOKEN_OPTIONS'));
    assert.throws(() => parseTokenRequest({ password: 'p', readonly: 'yes' }, year), code('ERR_TOKEN_OPTIONS'));
    assert.throws(() => parseTokenRequest({ password: 'p', cidr_whitelist: '10.0.0.0/8' }, year), code('ERR_TOKEN_OPTIONS'));
    assert.throws(() => parseTokenRequest({}, year), code('ERR_BAD_REQUEST'));
    assert.throws(() => parseTokenRequest('nope', year), code('ERR_BAD_REQUEST'));
  });

  test('plugin settings: defaults, paths relative to config.yaml, bad values name the key', () => {
    const settings = readPluginSettings({ storage: './store', registry_lockb: 'state/registry.lockb' }, '/srv/registry/config.yaml');
    assert.equal(settings.htpasswdFile, '/srv/registry/htpasswd');
    assert.equal(settings.keysDir, '/srv/registry/keys');
    assert.equal(settings.storageDir, '/srv/registry/store');
    assert.equal(settings.lockbPath, '/srv/registry/state/registry.lockb');
    assert.equal(settings.maxUsers, 1000);
    assert.equal(settings.admins, undefined);
    assert.equal(settings.tokenTtlSeconds, 7 * 86_400);
    assert.equal(settings.generatedTokenTtlSeconds, 90 * 86_400);
    assert.equal(settings.passwordMinLength, 8);
    const custom = readPluginSettings({ file: '/etc/htpasswd', max_users: -1, admins: ['root'], keys_dir: '../keys', token_ttl: '1h' }, '/srv/registry/config.yaml');
    assert.equal(custom.htpasswdFile, '/etc/htpasswd');
    assert.equal(custom.maxUsers, -1);
    assert.deepEqual(custom.admins, ['root']);
    assert.equal(custom.keysDir, '/srv/keys');
    assert.equal(custom.tokenTtlSeconds, 3600);
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ max_users: -2 }, /max_users/],
      [{ max_users: '10' }, /max_users/],
      [{ admins: 'root' }, /admins/],
      [{ file: '' }, /file/],
      [{ token_ttl: 'forever' }, /token_ttl/],
      [{ password_min_length: 100 }, /password_min_length/],
    ];
    for (const [section, key] of bad) {
      assert.throws(() => readPluginSettings(section, '/srv/registry/config.yaml'), (error: unknown) => isAuthError(error, 'ERR_AUTH_CONFIG') && key.test((error as Error).message), JSON.stringify(section));
    }
    assert.throws(() => readPluginSettings({}, undefined), (error: unknown) => isAuthError(error, 'ERR_AUTH_CONFIG'));
  });

  test('durations', () => {
    assert.equal(parseDuration('7d', 'x'), 604_800);
    assert.equal(parseDuration('12h', 'x'), 43_200);
    assert.equal(parseDuration(90, 'x'), 90);
    for (const bad of ['0d', '-1', '7 days', '', 1.5]) assert.throws(() => parseDuration(bad, 'x'), (error: unknown) => isAuthError(error, 'ERR_AUTH_CONFIG'));
  });
});
