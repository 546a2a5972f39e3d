/**
 * Issue 13 item 4 — registry signatures, verified by npm's own code: pacote (the library npm
 * installs with) fetches our packuments with `verifySignatures: true` and the keys of
 * `GET /-/npm/v1/keys`, exactly as `npm audit signatures` hands them to it. Real registry, real
 * npm publishing, real files (a tampered integrity is a hand edit of the stored package.json).
 */
import assert from 'node:assert/strict';
import { createHash, createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CACHE_HEADER, DEBUG_REQUEST_HEADER, mergePublishedKeys, SigningKeyRing, signingKeyId, type PublishedKey } from '../../plugins/registry-core/index';
import { isProxiedPackument, signedMessage, VersionSigner } from '../../plugins/verdaccio-registry-storage/signatures';
import { openSigningRing } from '../../plugins/verdaccio-registry-storage/plugin';
import { addUser, createClientDir, writePackage, startRegistry, type ClientDir, type RunningRegistry } from '../harness/registry';
import { getJson, publishBody, putPackage } from './lib/packages';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The part of pacote's API the test uses (pacote ships no types). */
interface Pacote {
  manifest(spec: string, options: Record<string, unknown>): Promise<{ _id: string; _integrity?: string; _signatures?: Array<{ keyid: string; sig: string }> }>;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const pacote = require('pacote') as Pacote;

const PASSWORD = 'correct-horse-battery';
const ABBREVIATED = 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*';

/** npm's verify-signatures.js turns each key into a PEM this way before handing it to pacote. */
function pacoteKeys(keys: PublishedKey[]): Array<PublishedKey & { pemkey: string }> {
  return keys.map((key) => ({ ...key, pemkey: `-----BEGIN PUBLIC KEY-----\n${key.key}\n-----END PUBLIC KEY-----` }));
}

async function registryKeys(registry: RunningRegistry): Promise<PublishedKey[]> {
  const { status, json } = await getJson(`${registry.url}/-/npm/v1/keys`);
  assert.equal(status, 200, JSON.stringify(json));
  return (json as { keys: PublishedKey[] }).keys;
}

/** pacote.manifest with signature verification against our keys; a fresh cache so nothing is reused. */
async function verifiedManifest(registry: RunningRegistry, spec: string): Promise<Awaited<ReturnType<Pacote['manifest']>>> {
  const keys = pacoteKeys(await registryKeys(registry));
  const host = new URL(registry.url).host;
  return pacote.manifest(spec, {
    registry: `${registry.url}/`,
    verifySignatures: true,
    [`//${host}/:_keys`]: keys,
    cache: mkdtempSync(join(tmpdir(), 'pacote-cache-')),
    preferOnline: true,
  });
}

function storedPackument(registry: RunningRegistry, name: string): Json {
  return JSON.parse(readFileSync(join(registry.storageDir, name, 'package.json'), 'utf8')) as Json;
}

function writeStoredPackument(registry: RunningRegistry, name: string, doc: Json): void {
  writeFileSync(join(registry.storageDir, name, 'package.json'), JSON.stringify(doc, null, '\t'));
}

describe('13.4 registry signatures (pacote verifies, keys from /-/npm/v1/keys)', () => {
  let registry: RunningRegistry;
  let client: ClientDir;
  let token: string;

  before(async () => {
    registry = await startRegistry();
    token = await addUser(registry, 'sig-alice', PASSWORD);
    client = createClientDir(registry, { token });
    for (const [name, version] of [
      ['sig-pkg', '1.0.0'],
      ['sig-pkg', '1.1.0'],
      ['@mycompany/sig-scoped', '2.0.0'],
      ['sig-tamper', '1.0.0'],
      ['sig-adopted', '1.0.0'],
    ]) {
      const published = await client.npm(['publish'], { cwd: writePackage(client.dir, { name, version }) });
      assert.equal(published.code, 0, published.stderr);
    }
  });
  after(async () => {
    await registry?.stop();
  });

  test('13.4 GET /-/npm/v1/keys: npm registry key format, key id = SHA256 of the SPKI DER, private key 0600 in its own folder beside the JWT keys', async () => {
    const keys = await registryKeys(registry);
    assert.equal(keys.length, 1);
    const [key] = keys;
    assert.equal(key.keytype, 'ecdsa-sha2-nistp256');
    assert.equal(key.scheme, 'ecdsa-sha2-nistp256');
    const der = Buffer.from(key.key, 'base64');
    const publicKey = createPublicKey({ key: der, format: 'der', type: 'spki' });
    assert.equal(publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.equal(key.keyid, `SHA256:${createHash('sha256').update(der).digest('base64').replace(/=+$/, '')}`);
    assert.ok(key.expires !== null && Date.parse(key.expires) > Date.now(), `expires in the future: ${key.expires}`);
    const dir = join(registry.dir, 'signing-keys');
    assert.deepEqual(readdirSync(dir), ['key-1.json']);
    assert.equal(statSync(join(dir, 'key-1.json')).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    const jwtKeys = readdirSync(join(registry.dir, 'keys'));
    assert.ok(jwtKeys.length > 0, 'the JWT keys stay in keys/, a folder of their own');
    for (const file of jwtKeys) assert.doesNotMatch(readFileSync(join(registry.dir, 'keys', file), 'utf8'), /BEGIN PRIVATE KEY/, 'no PEM signing key among the JWT keys');
  });

  test('13.4 every published version verifies with pacote (verifySignatures: true), plain and scoped', async () => {
    const [key] = await registryKeys(registry);
    for (const spec of ['sig-pkg@1.0.0', 'sig-pkg@1.1.0', '@mycompany/sig-scoped@2.0.0']) {
      const manifest = await verifiedManifest(registry, spec);
      assert.equal(manifest._signatures?.length, 1, `${spec} carries a registry signature`);
      assert.equal(manifest._signatures?.[0].keyid, key.keyid);
    }
  });

  test('13.4 every version npm installs (package-lock) verifies with pacote against /-/npm/v1/keys', async () => {
    const consumer = createClientDir(registry);
    const app = writePackage(consumer.dir, { name: 'sig-app', version: '0.0.0' });
    const installed = await consumer.npm(['install', 'sig-pkg@1.1.0', '@mycompany/sig-scoped@2.0.0'], { cwd: app });
    assert.equal(installed.code, 0, installed.stderr);
    const lock = JSON.parse(readFileSync(join(app, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; resolved?: string }> };
    const locked = Object.entries(lock.packages).filter(([path]) => path.startsWith('node_modules/'));
    assert.equal(locked.length, 2);
    for (const [path, entry] of locked) {
      assert.ok(entry.resolved?.startsWith(registry.url), `${path} came from this registry`);
      const manifest = await verifiedManifest(registry, `${path.slice('node_modules/'.length)}@${entry.version}`);
      assert.equal(manifest._signatures?.length, 1, `${path}@${entry.version} verified`);
    }
  });

  test('13.4 signatures are stored at publish (survive in the file) and are the same in the full and abbreviated packument, cached or not', async () => {
    const stored = storedPackument(registry, 'sig-pkg');
    const signatures = stored.versions['1.0.0'].dist.signatures;
    assert.equal(signatures.length, 1);
    const [key] = await registryKeys(registry);
    const message = `sig-pkg@1.0.0:${stored.versions['1.0.0'].dist.integrity}`;
    assert.ok(verify('sha256', Buffer.from(message), createPublicKey({ key: Buffer.from(key.key, 'base64'), format: 'der', type: 'spki' }), Buffer.from(signatures[0].sig, 'base64')));
    const seen: string[] = [];
    for (let i = 0; i < 2; i++) {
      for (const accept of ['application/json', ABBREVIATED]) {
        const response = await fetch(`${registry.url}/sig-pkg`, { headers: { accept, [DEBUG_REQUEST_HEADER]: 'cache' } });
        assert.equal(response.status, 200);
        seen.push(response.headers.get(CACHE_HEADER) ?? '');
        const doc = (await response.json()) as Json;
        assert.deepEqual(doc.versions['1.0.0'].dist.signatures, signatures, `${accept}: the stored signature`);
        assert.equal(doc.versions['1.1.0'].dist.signatures.length, 1);
      }
    }
    assert.ok(seen.includes('hit'), `the packument cache stays in play: ${seen.join(',')}`);
  });

  test('13.4 a tampered integrity (the stored packument edited by hand) fails pacote verification', async () => {
    const doc = storedPackument(registry, 'sig-tamper');
    const forged = `sha512-${createHash('sha512').update('not the tarball').digest('base64')}`;
    doc.versions['1.0.0'].dist.integrity = forged;
    writeStoredPackument(registry, 'sig-tamper', doc);
    await assert.rejects(verifiedManifest(registry, 'sig-tamper@1.0.0'), (error: NodeJS.ErrnoException) => {
      assert.equal(error.code, 'EINTEGRITYSIGNATURE', error.message);
      return true;
    });
  });

  test('13.4 a signature the publish body claims is replaced by the registry own', async () => {
    const { body } = publishBody(registry.url, 'sig-claimed', '1.0.0');
    const parsed = JSON.parse(body) as Json;
    parsed.versions['1.0.0'].dist.signatures = [{ keyid: 'SHA256:forged', sig: 'MEUCIQDforged' }];
    const put = await putPackage(registry.url, token, 'sig-claimed', JSON.stringify(parsed));
    assert.equal(put.status, 201, put.text);
    const stored = storedPackument(registry, 'sig-claimed').versions['1.0.0'].dist.signatures as Json[];
    assert.equal(stored.length, 1);
    assert.notEqual(stored[0].keyid, 'SHA256:forged');
    const manifest = await verifiedManifest(registry, 'sig-claimed@1.0.0');
    assert.equal(manifest._signatures?.length, 1);
  });

  test('13.4 a local version stored without signatures (adopted folder) is signed on read; the file is not rewritten', async () => {
    const doc = storedPackument(registry, 'sig-adopted');
    delete doc.versions['1.0.0'].dist.signatures;
    writeStoredPackument(registry, 'sig-adopted', doc);
    const first = await verifiedManifest(registry, 'sig-adopted@1.0.0');
    assert.equal(first._signatures?.length, 1);
    const again = await verifiedManifest(registry, 'sig-adopted@1.0.0');
    assert.deepEqual(again._signatures, first._signatures, 'memoised: the same signature on every read');
    assert.equal(storedPackument(registry, 'sig-adopted').versions['1.0.0'].dist.signatures, undefined);
  });

  test('13.4 a packument that came from an upstream keeps its own signatures and gets none of ours', async () => {
    const doc = structuredClone(storedPackument(registry, 'sig-pkg'));
    doc.name = 'sig-proxied';
    doc._id = 'sig-proxied';
    doc._uplinks = { upstream: { etag: '"abc"', fetched: Date.now() } };
    const upstreamSignatures = [{ keyid: 'SHA256:upstream-key', sig: 'MEUCIQC-upstream' }];
    doc.versions['1.0.0'].dist.signatures = upstreamSignatures;
    delete doc.versions['1.1.0'].dist.signatures;
    const dir = join(registry.storageDir, 'sig-proxied');
    mkdirSync(dir);
    writeStoredPackument(registry, 'sig-proxied', doc);
    const { status, json } = await getJson(`${registry.url}/sig-proxied`);
    assert.equal(status, 200, JSON.stringify(json));
    const versions = (json as Json).versions;
    assert.deepEqual(versions['1.0.0'].dist.signatures, upstreamSignatures);
    assert.equal(versions['1.1.0'].dist.signatures, undefined);
  });

  test('13.4 after a restart the same key signs and the stored signatures still verify', async () => {
    const before = await registryKeys(registry);
    registry = await registry.restart();
    assert.deepEqual(await registryKeys(registry), before);
    const manifest = await verifiedManifest(registry, 'sig-pkg@1.1.0');
    assert.equal(manifest._signatures?.[0].keyid, before[0].keyid);
  });
});

describe('13.4 signing keys and messages (units)', () => {
  test('13.4 key id is npm-style: SHA256: + unpadded base64 of the SPKI DER digest', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const der = publicKey.export({ type: 'spki', format: 'der' });
    const id = signingKeyId(der);
    assert.match(id, /^SHA256:[A-Za-z0-9+/]{43}$/);
    assert.equal(Buffer.from(id.slice(7), 'base64').toString('hex'), createHash('sha256').update(der).digest('hex'));
  });

  test('13.4 rotation: an expired key no longer signs, stays published, and what it signed still verifies', () => {
    const dir = mkdtempSync(join(tmpdir(), 'signing-keys-'));
    let now = Date.parse('2026-01-01T00:00:00Z');
    const ring = SigningKeyRing.open(dir, { keyDays: 30, now: () => now });
    const first = ring.active();
    const message = 'pkg@1.0.0:sha512-abc';
    const old = ring.sign(message);
    assert.equal(old.keyid, first.keyid);
    now += 31 * 86_400_000;
    const second = ring.active();
    assert.notEqual(second.keyid, first.keyid, 'a new key after expiry');
    assert.equal(ring.sign(message).keyid, second.keyid);
    const published = ring.published().keys;
    assert.deepEqual(published.map((key) => key.keyid), [first.keyid, second.keyid]);
    assert.equal(published[0].expires, new Date(first.expires).toISOString());
    const firstPublic = createPublicKey({ key: Buffer.from(published[0].key, 'base64'), format: 'der', type: 'spki' });
    assert.ok(verify('sha256', Buffer.from(message), firstPublic, Buffer.from(old.sig, 'base64')));
    // another process (a second ring on the folder) sees the same two keys and generates none
    const other = SigningKeyRing.open(dir, { keyDays: 30, now: () => now });
    assert.deepEqual(other.keys().map((key) => key.keyid), [first.keyid, second.keyid]);
    assert.deepEqual(readdirSync(dir).sort(), ['key-1.json', 'key-2.json']);
  });

  test('13.4 config.yaml settings: signing_keys_dir relative to config.yaml, signing_key_days checked, signing: false', () => {
    const dir = mkdtempSync(join(tmpdir(), 'signing-config-'));
    const configPath = join(dir, 'config.yaml');
    const ring = openSigningRing({ configPath, signing_keys_dir: './elsewhere', signing_key_days: 2 });
    assert.equal(ring?.dir, join(dir, 'elsewhere'));
    assert.ok(ring !== null && ring.active().expires - ring.active().created === 2 * 86_400_000);
    assert.equal(openSigningRing({ configPath, signing: false }), null);
    assert.throws(() => openSigningRing({ configPath, signing_key_days: 'ten' }), /signing_key_days/);
    assert.throws(() => openSigningRing({ configPath, signing_key_days: 0 }), /1 to 36500 days/);
    assert.throws(() => openSigningRing({ configPath, signing_keys_dir: 7 }), /signing_keys_dir/);
  });

  test('13.4 upstream keys seam: /-/npm/v1/keys lists ours first and adds the upstream keys (ours win a keyid clash)', () => {
    const key = (keyid: string, body: string): PublishedKey => ({ keyid, keytype: 'ecdsa-sha2-nistp256', scheme: 'ecdsa-sha2-nistp256', key: body, expires: null });
    const ours = [key('SHA256:ours', 'A')];
    const merged = mergePublishedKeys(ours, [key('SHA256:up', 'B'), key('SHA256:ours', 'forged'), { keyid: 7 } as unknown as PublishedKey]);
    assert.deepEqual(merged.map((k) => `${k.keyid}=${k.key}`), ['SHA256:ours=A', 'SHA256:up=B']);
  });

  test('13.4 a damaged key file refuses to load (no silent new key)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'signing-keys-'));
    writeFileSync(join(dir, 'key-1.json'), '{"privateKey": "nope"');
    assert.throws(() => SigningKeyRing.open(dir), /not a readable signing key/);
  });

  test('13.4 the signed message is pacote\'s: name@version:integrity (sha1 shasum as SRI when there is no integrity)', () => {
    assert.equal(signedMessage('a', '1.0.0', { integrity: 'sha512-AAAA' }), 'a@1.0.0:sha512-AAAA');
    const shasum = 'a'.repeat(40);
    assert.equal(signedMessage('@s/a', '1.0.0', { shasum }), `@s/a@1.0.0:sha1-${Buffer.from(shasum, 'hex').toString('base64')}`);
    assert.equal(signedMessage('a', '1.0.0', {}), null);
  });

  test('13.4 withSignatures never touches existing signatures, proxied packuments, or the store object', () => {
    const dir = mkdtempSync(join(tmpdir(), 'signing-keys-'));
    const signer = new VersionSigner(SigningKeyRing.open(dir));
    const theirs = [{ keyid: 'SHA256:x', sig: 'y' }];
    const manifest = {
      name: 'p',
      'dist-tags': {},
      versions: { '1.0.0': { dist: { integrity: 'sha512-AAAA', signatures: theirs } }, '2.0.0': { dist: { integrity: 'sha512-BBBB' } } },
    };
    const served = signer.withSignatures(manifest);
    assert.deepEqual(served.versions['1.0.0'].dist?.signatures, theirs);
    assert.equal((served.versions['2.0.0'].dist?.signatures as unknown[]).length, 1);
    assert.equal((manifest.versions['2.0.0'].dist as Json).signatures, undefined, 'the input is not mutated');
    const proxied = { ...manifest, _uplinks: { upstream: {} } };
    assert.ok(isProxiedPackument(proxied));
    assert.equal(signer.withSignatures(proxied), proxied);
  });
});
