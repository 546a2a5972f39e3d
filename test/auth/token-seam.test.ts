/**
 * The one token check (core `token-verifier.ts`, filled by the auth plugin): `TokenIssuer.check`
 * gives every refusal a stable code, restrictions follow the use (peer address, read/write), and
 * the core's registration is per registry.lockb with no fallback. Real files: registry.lockb,
 * `.env.local`, key files, the token store; tokens from the past are signed with the real keys.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { ConfigFile, createConfigFile, defaultFields, readRegistryUrl, setEnvFileValue } from '../../plugins/registry-core/index';
import { TokenStore } from '../../plugins/registry-core/token-store';
import {
  isTokenRejection,
  registerTokenVerifier,
  verifyRegistryToken,
  type TokenRejectionCode,
  type TokenUse,
} from '../../plugins/registry-core/token-verifier';
import { loadKeyRing, type KeyRing } from '../../plugins/verdaccio-registry-auth/keys';
import { TokenIssuer, identityOf } from '../../plugins/verdaccio-registry-auth/token-issuer';

const HERE: TokenUse = { peerAddress: '127.0.0.1', intent: 'read' };

describe('TokenIssuer.check: one rule, stable codes', () => {
  let config: ConfigFile;
  let store: TokenStore;
  let ring: KeyRing;
  let issuer: TokenIssuer;
  let lockb: string;

  before(() => {
    const dir = mkdtempSync(join(tmpdir(), 'auth-seam-'));
    lockb = join(dir, 'registry.lockb');
    createConfigFile(lockb, defaultFields());
    config = ConfigFile.open(lockb);
    const envFile = join(dir, '.env.local');
    setEnvFileValue(envFile, 'BUN_REGISTRY_URL', 'http://localhost:4873');
    ring = loadKeyRing(join(dir, 'keys'));
    store = TokenStore.open(join(dir, 'storage', '.registry-tokens.json'));
    issuer = new TokenIssuer(ring, { fields: () => config.getConfig().fields, registryUrl: () => readRegistryUrl(envFile) }, store, { defaultTtlSeconds: 3600 });
  });
  after(() => {
    config.close();
    store.close();
  });

  const refusal = async (token: string, use: TokenUse): Promise<TokenRejectionCode> => {
    try {
      await issuer.check(token, use);
    } catch (error) {
      assert.ok(isTokenRejection(error), String(error));
      return error.code;
    }
    assert.fail('accepted');
  };

  const signedBy = async (claims: Record<string, unknown>): Promise<string> => {
    const key = ring.require(issuer.state().alg);
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ groups: ['alice'], ...claims })
      .setProtectedHeader({ alg: key.alg, kid: key.kid })
      .setSubject('alice')
      .setJti(`jti-${Math.random().toString(16).slice(2)}`)
      .setIssuedAt(now - 7200)
      .sign(key.privateKey as CryptoKey);
  };

  test('a plain token: identity for reads and writes, from any address', async () => {
    const issued = await issuer.issue('alice', ['alice', 'registry-admin']);
    for (const use of [HERE, { peerAddress: '10.1.2.3', intent: 'write' } as const]) {
      assert.deepEqual(identityOf(await issuer.check(issued.token, use)), {
        user: 'alice',
        groups: ['alice', 'registry-admin'],
        jti: issued.jti,
        expiresAt: issued.expiresAt,
        readonly: false,
        cidr: [],
        packages: [],
        scopes: [],
      });
    }
  });

  test('13.3 package limits on the seam: the use names a package (a socket event); other packages and writes about none are refused with package', async () => {
    const issued = await issuer.issue('alice', ['alice'], { packages: ['p'], scopes: ['@s'] });
    assert.deepEqual(identityOf(await issuer.check(issued.token, { ...HERE, package: 'p' })).packages, ['p']);
    assert.deepEqual(identityOf(await issuer.check(issued.token, { ...HERE, intent: 'write', package: '@s/x' })).scopes, ['@s']);
    assert.equal((await issuer.check(issued.token, HERE)).user, 'alice', 'a read about no package');
    assert.equal(await refusal(issued.token, { ...HERE, package: 'q' }), 'package');
    assert.equal(await refusal(issued.token, { ...HERE, intent: 'write' }), 'package');
  });

  test('read-only: reads pass, writes are refused with read-only', async () => {
    const issued = await issuer.issue('alice', ['alice'], { readonly: true });
    assert.equal((await issuer.check(issued.token, HERE)).readonly, true);
    assert.equal(await refusal(issued.token, { ...HERE, intent: 'write' }), 'read-only');
  });

  test('CIDR: the peer address decides, for reads too; IPv4-mapped IPv6 peers count as IPv4', async () => {
    const issued = await issuer.issue('alice', ['alice'], { cidr: ['10.0.0.0/8'] });
    assert.equal(await refusal(issued.token, HERE), 'cidr');
    assert.equal(await refusal(issued.token, { peerAddress: '::ffff:127.0.0.1', intent: 'read' }), 'cidr');
    assert.equal((await issuer.check(issued.token, { peerAddress: '::ffff:10.9.8.7', intent: 'write' })).user, 'alice');
    assert.equal(await refusal(issued.token, { peerAddress: '', intent: 'read' }), 'cidr', 'an unknown address is outside every range');
  });

  test('revoked, expired, another issuer, not ours', async () => {
    const revoked = await issuer.issue('alice', ['alice']);
    assert.equal((await issuer.check(revoked.token, HERE)).user, 'alice', 'cached first');
    store.revokeJti(revoked.jti, revoked.expiresAt);
    assert.equal(await refusal(revoked.token, HERE), 'revoked');

    const state = issuer.state();
    const now = Math.floor(Date.now() / 1000);
    assert.equal(await refusal(await signedBy({ iss: state.issuer.url, aud: state.audience, exp: now - 3600 }), HERE), 'expired');
    assert.equal(await refusal(await signedBy({ iss: 'https://elsewhere.example/_auth', aud: state.audience, exp: now + 3600 }), HERE), 'wrong-issuer');
    assert.equal(await refusal(await signedBy({ iss: state.issuer.url, aud: 'registry:00000000', exp: now + 3600 }), HERE), 'wrong-issuer');
    assert.equal(await refusal('not.a.token', HERE), 'invalid');
    assert.equal(await refusal('', HERE), 'invalid');
  });

  test('the core seam: per registry.lockb, refuses when nothing is registered, unregister removes only its own verifier', async () => {
    const other = join(tmpdir(), 'no-such-registry', 'registry.lockb');
    await assert.rejects(verifyRegistryToken(other, 'x', HERE), (error: unknown) => isTokenRejection(error, 'unavailable'));
    const unregister = registerTokenVerifier(lockb, async (token, use) => identityOf(await issuer.check(token, use)));
    try {
      const issued = await issuer.issue('alice', ['alice']);
      assert.equal((await verifyRegistryToken(lockb, issued.token, HERE)).user, 'alice');
      await assert.rejects(verifyRegistryToken(other, issued.token, HERE), (error: unknown) => isTokenRejection(error, 'unavailable'));
      const ro = await issuer.issue('alice', ['alice'], { readonly: true });
      await assert.rejects(verifyRegistryToken(lockb, ro.token, { ...HERE, intent: 'write' }), (error: unknown) => isTokenRejection(error, 'read-only'));
    } finally {
      unregister();
    }
    await assert.rejects(verifyRegistryToken(lockb, 'x', HERE), (error: unknown) => isTokenRejection(error, 'unavailable'));
  });
});
