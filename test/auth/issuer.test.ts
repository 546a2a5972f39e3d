/**
 * The issuer and verifier against real files: a real registry.lockb (core ConfigFile), a real
 * `.env.local`, real key files. Expected issuers/audiences are written out from docs/identity.md, not
 * computed by the code under test.
 */
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SignJWT, UnsecuredJWT, createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { ConfigFile, FEATURE_FLAGS, createConfigFile, defaultFields, hashRegistryUrl, readRegistryUrl, setEnvFileValue, type ConfigFields } from '../../plugins/registry-core/index';
import { TokenStore } from '../../plugins/registry-core/token-store';
import { isAuthError } from '../../plugins/verdaccio-registry-auth/errors';
import { loadKeyRing, type KeyRing } from '../../plugins/verdaccio-registry-auth/keys';
import { TokenIssuer } from '../../plugins/verdaccio-registry-auth/token-issuer';

interface Fixture {
  dir: string;
  config: ConfigFile;
  envFile: string;
  ring: KeyRing;
  store: TokenStore;
  issuer: TokenIssuer;
}

function makeFixture(registryUrl: string, flags: number, hashOf: string = registryUrl): Fixture {
  const dir = mkdtempSync(join(tmpdir(), 'auth-issuer-'));
  const lockb = join(dir, 'registry.lockb');
  const fields: ConfigFields = { ...defaultFields(hashOf), featureFlags: flags };
  createConfigFile(lockb, fields);
  const config = ConfigFile.open(lockb);
  const envFile = join(dir, '.env.local');
  setEnvFileValue(envFile, 'BUN_REGISTRY_URL', registryUrl);
  const ring = loadKeyRing(join(dir, 'keys'));
  const store = TokenStore.open(join(dir, 'storage', '.registry-tokens.json'));
  const issuer = new TokenIssuer(ring, { fields: () => config.getConfig().fields, registryUrl: () => readRegistryUrl(envFile) }, store, {
    defaultTtlSeconds: 3600,
  });
  return { dir, config, envFile, ring, store, issuer };
}

function closeFixture(fixture: Fixture): void {
  fixture.config.close();
  fixture.store.close();
}

const PREMIUM = FEATURE_FLAGS.PREMIUM_TYPES;
const PRIVATE = FEATURE_FLAGS.PRIVATE_REGISTRY;

describe('docs/identity.md decision tree: algorithm, issuer, audience (table-driven)', () => {
  const table: {
    name: string;
    url: string;
    hashOf?: string;
    flags: number;
    alg: 'EdDSA' | 'RS256';
    iss: string;
    kind: 'private' | 'local' | 'public';
    aud: string;
  }[] = [
    { name: 'private + premium, company URL', url: 'https://registry.mycompany.com', flags: PRIVATE | PREMIUM, alg: 'EdDSA', iss: 'https://registry.mycompany.com/_auth', kind: 'private', aud: 'registry:4469efac' },
    { name: 'private, no premium, company URL', url: 'https://registry.mycompany.com', flags: PRIVATE, alg: 'RS256', iss: 'https://registry.mycompany.com/_auth', kind: 'private', aud: 'registry:4469efac' },
    { name: 'private + premium, localhost default', url: 'http://localhost:4873', flags: PRIVATE | PREMIUM, alg: 'EdDSA', iss: 'http://localhost:4873/_auth', kind: 'private', aud: 'registry:ceb6960a' },
    { name: 'private, URL with a path and trailing slash', url: 'https://example.com/npm/', flags: PRIVATE, alg: 'RS256', iss: 'https://example.com/npm/_auth', kind: 'private', aud: `registry:${hashRegistryUrl('https://example.com/npm').toString(16).padStart(8, '0')}` },
    { name: 'not private, hash of localhost → local', url: 'http://localhost:4873', flags: PREMIUM, alg: 'EdDSA', iss: 'http://localhost:4873/_auth', kind: 'local', aud: 'registry:ceb6960a' },
    { name: 'not private, localhost hash but another URL configured → still local', url: 'https://registry.mycompany.com', hashOf: 'http://localhost:4873', flags: 0, alg: 'RS256', iss: 'http://localhost:4873/_auth', kind: 'local', aud: 'registry:ceb6960a' },
    { name: 'not private, company URL → public', url: 'https://registry.mycompany.com', flags: PREMIUM, alg: 'EdDSA', iss: 'https://registry.mycompany.com', kind: 'public', aud: 'registry:4469efac' },
    { name: 'not private, no premium, company URL → public RS256', url: 'https://registry.mycompany.com', flags: 0, alg: 'RS256', iss: 'https://registry.mycompany.com', kind: 'public', aud: 'registry:4469efac' },
  ];

  for (const row of table) {
    test(row.name, async () => {
      const fixture = makeFixture(row.url, row.flags, row.hashOf);
      try {
        const state = fixture.issuer.state();
        assert.equal(state.alg, row.alg);
        assert.deepEqual(state.issuer, { url: row.iss, kind: row.kind });
        assert.equal(state.audience, row.aud);

        const issued = await fixture.issuer.issue('alice', ['alice', 'registry-admin']);
        const header = decodeProtectedHeader(issued.token);
        assert.equal(header.alg, row.alg);
        assert.equal(header.kid, fixture.ring.require(row.alg).kid);
        assert.equal(header.typ, 'JWT');
        const claims = decodeJwt(issued.token);
        assert.equal(claims.iss, row.iss);
        assert.equal(claims.aud, row.aud);
        assert.equal(claims.sub, 'alice');
        assert.deepEqual(claims.groups, ['alice', 'registry-admin']);
        assert.equal(typeof claims.jti, 'string');
        assert.equal(claims.exp! - claims.iat!, 3600);
        assert.ok(Math.abs(claims.iat! * 1000 - Date.now()) < 60_000);

        // an independent verifier that knows only the JWKS document
        const jwks = createLocalJWKSet(JSON.parse(JSON.stringify(await fixture.issuer.jwks())));
        const independent = await jwtVerify(issued.token, jwks, { issuer: row.iss, audience: row.aud, algorithms: [row.alg] });
        assert.equal(independent.payload.sub, 'alice');

        const verified = await fixture.issuer.verify(issued.token);
        assert.equal(verified.user, 'alice');
        assert.equal(verified.alg, row.alg);
      } finally {
        closeFixture(fixture);
      }
    });
  }
});

describe('rejected tokens', () => {
  let fixture: Fixture;
  let good: string;
  before(async () => {
    fixture = makeFixture('http://localhost:4873', PRIVATE | PREMIUM);
    good = (await fixture.issuer.issue('alice', ['alice'])).token;
  });
  after(() => closeFixture(fixture));

  const rejects = async (token: string, reason: RegExp): Promise<void> => {
    await assert.rejects(fixture.issuer.verify(token), (error: unknown) => {
      assert.ok(isAuthError(error, 'ERR_TOKEN_INVALID'), String(error));
      assert.match((error as Error).message, reason);
      return true;
    });
  };

  const claimsFor = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
    sub: 'alice',
    groups: ['alice'],
    iss: 'http://localhost:4873/_auth',
    aud: 'registry:ceb6960a',
    iat: Math.floor(Date.now() / 1000),
    exp: Math.floor(Date.now() / 1000) + 600,
    jti: 'forged',
    ...overrides,
  });

  test('the good token verifies (control)', async () => {
    assert.equal((await fixture.issuer.verify(good)).user, 'alice');
  });

  test('alg: none', async () => {
    const unsecured = new UnsecuredJWT(claimsFor({ sub: 'mallory' })).encode();
    await rejects(unsecured, /./);
    const withKid = `${Buffer.from(JSON.stringify({ alg: 'none', kid: fixture.ring.require('EdDSA').kid })).toString('base64url')}.${good.split('.')[1]}.`;
    await rejects(withKid, /./);
  });

  test('HS256 signed with our public key (algorithm confusion)', async () => {
    for (const alg of ['EdDSA', 'RS256'] as const) {
      const key = fixture.ring.require(alg);
      const publicBytes = new TextEncoder().encode(JSON.stringify(key.publicJwk));
      const pem = new TextEncoder().encode(createPublicKey({ key: key.publicJwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString());
      for (const secret of [publicBytes, pem]) {
        const forged = await new SignJWT(claimsFor({ sub: 'mallory' })).setProtectedHeader({ alg: 'HS256', kid: key.kid }).sign(secret);
        await rejects(forged, /algorithm/);
      }
    }
  });

  test('EdDSA token naming the RSA kid (and the reverse)', async () => {
    const header = { ...decodeProtectedHeader(good), kid: fixture.ring.require('RS256').kid };
    const swapped = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${good.split('.')[1]}.${good.split('.')[2]}`;
    await rejects(swapped, /algorithm|signature/);
  });

  test('tampered payload', async () => {
    const [h, , s] = good.split('.');
    const payload = Buffer.from(JSON.stringify({ ...decodeJwt(good), sub: 'mallory' })).toString('base64url');
    await rejects(`${h}.${payload}.${s}`, /signature/);
  });

  test('signed by a key that is not ours, with our kid', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const forged = await new SignJWT(claimsFor()).setProtectedHeader({ alg: 'EdDSA', kid: fixture.ring.require('EdDSA').kid }).sign(privateKey);
    await rejects(forged, /signature/);
  });

  test('unknown kid', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const forged = await new SignJWT(claimsFor()).setProtectedHeader({ alg: 'EdDSA', kid: 'not-a-key-of-ours' }).sign(privateKey);
    await rejects(forged, /unknown kid/);
    const noKid = await new SignJWT(claimsFor()).setProtectedHeader({ alg: 'EdDSA' }).sign(privateKey);
    await rejects(noKid, /unknown kid/);
  });

  test('expired (16.5: the clock is moved, not slept past)', async () => {
    let now = Date.now();
    const issuer = new TokenIssuer(fixture.ring, { fields: () => fixture.config.getConfig().fields, registryUrl: () => readRegistryUrl(fixture.envFile) }, fixture.store, {
      defaultTtlSeconds: 3600,
      now: () => now,
    });
    const token = (await issuer.issue('alice', [], { ttlSeconds: 1 })).token;
    assert.equal((await issuer.verify(token)).user, 'alice', 'valid within its second');
    now += 2_100;
    await assert.rejects(issuer.verify(token), /expired/, 'the cached verification expires with the clock too');
    const fresh = new TokenIssuer(fixture.ring, { fields: () => fixture.config.getConfig().fields, registryUrl: () => readRegistryUrl(fixture.envFile) }, fixture.store, {
      defaultTtlSeconds: 3600,
      now: () => now,
    });
    await assert.rejects(fresh.verify(token), /expired/, 'and so does a first verification (jose currentDate)');
  });

  test('wrong aud, wrong iss, missing claims (signed with our own key)', async () => {
    const key = fixture.ring.require('EdDSA');
    const sign = (claims: Record<string, unknown>): Promise<string> =>
      new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid: key.kid }).sign(key.privateKey as CryptoKey);
    await rejects(await sign(claimsFor({ aud: 'registry:4469efac' })), /aud/);
    await rejects(await sign(claimsFor({ iss: 'https://evil.example/_auth' })), /iss/);
    await rejects(await sign(claimsFor({ jti: undefined })), /jti/);
    await rejects(await sign(claimsFor({ sub: 42 })), /sub/);
    await rejects(await sign(claimsFor({ groups: 'registry-admin' })), /groups/);
    await rejects(await sign(claimsFor({ exp: undefined })), /exp/);
    // control: the same helper with correct claims verifies
    assert.equal((await fixture.issuer.verify(await sign(claimsFor({ jti: 'fine' })))).user, 'alice');
  });

  test('truncated and garbage', async () => {
    await rejects(good.slice(0, good.length - 10), /signature|malformed/);
    await rejects(good.split('.').slice(0, 2).join('.'), /malformed/);
    await rejects('garbage', /malformed/);
    await rejects('', /malformed/);
    await rejects('a.b.c', /malformed/);
    await rejects('x'.repeat(10_000), /malformed/);
  });

  test('revoked: takes effect even when the token sits in the verified cache', async () => {
    const issued = await fixture.issuer.issue('alice', ['alice']);
    assert.equal((await fixture.issuer.verify(issued.token)).jti, issued.jti);
    assert.equal((await fixture.issuer.verify(issued.token)).jti, issued.jti, 'second verify: cache hit');
    fixture.store.revokeJti(issued.jti, issued.expiresAt);
    await rejects(issued.token, /revoked/);
  });
});

describe('config changes apply to the very next token', () => {
  test('flipping PREMIUM_TYPES: new tokens RS256 and back; tokens issued before keep verifying', async () => {
    const fixture = makeFixture('http://localhost:4873', PRIVATE | PREMIUM);
    try {
      const ed = await fixture.issuer.issue('alice', []);
      assert.equal(decodeProtectedHeader(ed.token).alg, 'EdDSA');
      await fixture.config.toggleFeature('PREMIUM_TYPES');
      const rsa = await fixture.issuer.issue('alice', []);
      assert.equal(decodeProtectedHeader(rsa.token).alg, 'RS256');
      assert.equal(decodeProtectedHeader(rsa.token).kid, fixture.ring.require('RS256').kid);
      assert.equal((await fixture.issuer.verify(ed.token)).alg, 'EdDSA', 'the EdDSA token still verifies');
      await fixture.config.toggleFeature('PREMIUM_TYPES');
      const back = await fixture.issuer.issue('alice', []);
      assert.equal(decodeProtectedHeader(back.token).alg, 'EdDSA');
      assert.equal((await fixture.issuer.verify(rsa.token)).alg, 'RS256', 'the RS256 token still verifies');
      assert.equal(decodeJwt(rsa.token).iss, decodeJwt(back.token).iss, 'issuer unchanged by the flag');
      assert.equal(decodeJwt(rsa.token).aud, decodeJwt(back.token).aud, 'audience unchanged by the flag');
    } finally {
      closeFixture(fixture);
    }
  });

  test('changing the registry URL (env file, then hash) invalidates tokens issued before — also cached ones', async () => {
    const fixture = makeFixture('http://localhost:4873', PRIVATE | PREMIUM);
    try {
      const before = await fixture.issuer.issue('alice', []);
      await fixture.issuer.verify(before.token); // now cached
      setEnvFileValue(fixture.envFile, 'BUN_REGISTRY_URL', 'https://registry.mycompany.com');
      await fixture.config.update((fields) => ({ ...fields, registryHash: hashRegistryUrl('https://registry.mycompany.com') }));
      await assert.rejects(fixture.issuer.verify(before.token), (error: unknown) => isAuthError(error, 'ERR_TOKEN_INVALID'));
      const after = await fixture.issuer.issue('alice', []);
      assert.equal(decodeJwt(after.token).iss, 'https://registry.mycompany.com/_auth');
      assert.equal(decodeJwt(after.token).aud, 'registry:4469efac');
      assert.equal((await fixture.issuer.verify(after.token)).user, 'alice');
    } finally {
      closeFixture(fixture);
    }
  });

  test('clearing PRIVATE_REGISTRY on a public URL changes the issuer: old tokens are refused', async () => {
    const fixture = makeFixture('https://registry.mycompany.com', PRIVATE | PREMIUM);
    try {
      const before = await fixture.issuer.issue('alice', []);
      await fixture.config.toggleFeature('PRIVATE_REGISTRY');
      await assert.rejects(fixture.issuer.verify(before.token), /iss/);
      assert.equal(decodeJwt((await fixture.issuer.issue('alice', [])).token).iss, 'https://registry.mycompany.com');
    } finally {
      closeFixture(fixture);
    }
  });
});

describe('generated-token claims', () => {
  test('readonly and cidr travel in the token and come back verified', async () => {
    const fixture = makeFixture('http://localhost:4873', PRIVATE | PREMIUM);
    try {
      const issued = await fixture.issuer.issue('bob', ['bob'], { readonly: true, cidr: ['10.1.0.0/16', '192.168.1.7'] });
      const claims = decodeJwt(issued.token);
      assert.equal(claims.readonly, true);
      assert.deepEqual(claims.cidr, ['10.1.0.0/16', '192.168.1.7/32']);
      const verified = await fixture.issuer.verify(issued.token);
      assert.equal(verified.readonly, true);
      assert.ok(verified.cidr?.allows('10.1.200.3'));
      assert.ok(verified.cidr?.allows('::ffff:192.168.1.7'));
      assert.ok(!verified.cidr?.allows('10.2.0.1'));
      assert.ok(!verified.cidr?.allows('127.0.0.1'));
      const plain = await fixture.issuer.verify((await fixture.issuer.issue('bob', [])).token);
      assert.equal(plain.readonly, false);
      assert.equal(plain.cidr, null);
    } finally {
      closeFixture(fixture);
    }
  });
});
