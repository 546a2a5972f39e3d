/**
 * Bad input through the real server: tarballs that do not match their declared integrity, and
 * path traversal in package and tarball names. Every one gets a 4xx, stores nothing and writes
 * no index record; no file appears outside the storage folder.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PackageIndex } from '../../plugins/registry-core/index';
import { addUser, startRegistry, type RunningRegistry } from '../harness/registry';
import { getBytes, getJson, makeTarball, publishBody, publishRaw, putPackage, sha1Hex, storedFiles, tarballUrl, useOurStorage } from './lib/packages';

function storageFiles(registry: RunningRegistry): string[] {
  return [...storedFiles(registry.storageDir).keys()].sort();
}

function recordNames(registry: RunningRegistry): string[] {
  const index = PackageIndex.open(registry.lockbPath);
  try {
    return index.readAll().map((r) => `${r.kind} ${r.name}@${r.version}`);
  } finally {
    index.close();
  }
}

describe('publish validation and path safety', () => {
  let registry: RunningRegistry;
  let token: string;
  const wrongIntegrity = `sha512-${createHash('sha512').update('not the tarball').digest('base64')}`;

  before(async () => {
    registry = await startRegistry({ editConfig: useOurStorage });
    token = await addUser(registry, 'checker', 'correct-horse-battery');
    const ok = await publishRaw(registry.url, token, '@acme/ok', '1.0.0');
    assert.equal(ok.status, 201, ok.text);
  });
  after(async () => {
    await registry?.stop();
  });

  test('new package whose tarball does not match dist.integrity: 400, nothing stored, no index record', async () => {
    const before = storageFiles(registry);
    const recordsBefore = recordNames(registry);
    const result = await publishRaw(registry.url, token, '@acme/tampered', '1.0.0', { integrity: wrongIntegrity });
    assert.equal(result.status, 400, result.text);
    assert.match(JSON.parse(result.text).error, /integrity/);
    assert.deepEqual(storageFiles(registry), before);
    assert.equal(existsSync(join(registry.storageDir, '@acme', 'tampered')), false);
    assert.deepEqual(recordNames(registry), recordsBefore);
    assert.equal((await getJson(`${registry.url}/@acme%2ftampered`)).status, 404);
    assert.equal((await getBytes(tarballUrl(registry.url, '@acme/tampered', '1.0.0'))).status, 404);
    const db = JSON.parse(readFileSync(join(registry.storageDir, '.verdaccio-db.json'), 'utf8')) as { list: string[] };
    assert.ok(!db.list.includes('@acme/tampered'));
  });

  test('new version whose dist.shasum is wrong (integrity right), or that declares no hash at all: 400, package unchanged', async () => {
    const manifestBefore = readFileSync(join(registry.storageDir, '@acme', 'ok', 'package.json'), 'utf8');
    const recordsBefore = recordNames(registry);
    const badSha = await publishRaw(registry.url, token, '@acme/ok', '1.0.1', { shasum: sha1Hex(Buffer.from('other')) });
    assert.equal(badSha.status, 400, badSha.text);
    const tarball = makeTarball('@acme/ok', '1.0.2');
    const { body } = publishBody(registry.url, '@acme/ok', '1.0.2', { tarball });
    const parsed = JSON.parse(body) as { versions: Record<string, { dist: Record<string, unknown> }> };
    delete parsed.versions['1.0.2'].dist.integrity;
    delete parsed.versions['1.0.2'].dist.shasum;
    const noHash = await putPackage(registry.url, token, '@acme/ok', JSON.stringify(parsed));
    assert.equal(noHash.status, 400, noHash.text);
    const wrongIntegrityExisting = await publishRaw(registry.url, token, '@acme/ok', '1.0.3', { integrity: wrongIntegrity });
    assert.equal(wrongIntegrityExisting.status, 400, wrongIntegrityExisting.text);

    const { json } = await getJson(`${registry.url}/@acme%2fok`);
    assert.deepEqual(Object.keys(json.versions as object), ['1.0.0']);
    assert.deepEqual(Object.keys(json._attachments ?? {}).filter((k) => k !== 'ok-1.0.0.tgz'), []);
    assert.deepEqual(readdirSync(join(registry.storageDir, '@acme', 'ok')).sort(), ['ok-1.0.0.tgz', 'package.json']);
    assert.deepEqual(recordNames(registry), recordsBefore);
    const manifestAfter = JSON.parse(readFileSync(join(registry.storageDir, '@acme', 'ok', 'package.json'), 'utf8')) as { versions: object; _attachments: object };
    assert.deepEqual(Object.keys(manifestAfter.versions), Object.keys((JSON.parse(manifestBefore) as { versions: object }).versions));
    assert.deepEqual(Object.keys(manifestAfter._attachments), ['ok-1.0.0.tgz']);
    // the good version is still served
    assert.equal((await getBytes(tarballUrl(registry.url, '@acme/ok', '1.0.0'))).status, 200);
  });

  test('path traversal in package names and tarball names: 4xx, no file outside storage, storage unchanged', async () => {
    const outsideBefore = [...storedFiles(dirname(registry.storageDir)).keys()].filter((f) => !f.startsWith('storage/')).sort();
    const storageBefore = storageFiles(registry);
    const recordsBefore = recordNames(registry);
    const attempts: Array<{ label: string; run: () => Promise<number> }> = [];
    const put = (label: string, path: string, name: string, options: Parameters<typeof publishBody>[3] = {}): void => {
      attempts.push({
        label,
        run: async () => (await putPackage(registry.url, token, name, publishBody(registry.url, name, '1.0.0', options).body, path)).status,
      });
    };
    put('../ in name', '..%2f..%2fevil', '../../evil');
    put('encoded dots', '%2e%2e%2fevil', '../evil');
    put('scope then ..', '@acme%2f..%2f..%2fevil', '@acme/../../evil');
    put('double dot name', '..', '..');
    put('leading dot', '.evil', '.evil');
    put('leading underscore', '_evil', '_evil');
    put('uppercase', 'EvilName', 'EvilName');
    put('backslash', 'evil%5c..%5c..%5cx', 'evil\\..\\..\\x');
    put('attachment with ../', '@acme%2fok2', '@acme/ok2', { attachmentName: '../../../evil-1.0.0.tgz' });
    put('attachment for another package', '@acme%2fok2', '@acme/ok2', { attachmentName: 'evil-1.0.0.tgz' });
    put('dist.tarball elsewhere', '@acme%2fok2', '@acme/ok2', { distTarball: `${registry.url}/@acme/ok2/-/../../../../evil-1.0.0.tgz` });
    put('name mismatch', '@acme%2fok3', '@acme/other');
    const raw = (label: string, method: string, path: string, body?: Buffer): void => {
      attempts.push({
        label,
        run: async () =>
          (
            await fetch(`${registry.url}/${path}`, {
              method,
              headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/octet-stream' } : {}) },
              body: body ? new Uint8Array(body) : undefined,
            })
          ).status,
      });
    };
    raw('tarball GET ../config.yaml', 'GET', '@acme%2fok/-/..%2f..%2f..%2fconfig.yaml');
    raw('tarball GET ../package.json', 'GET', '@acme%2fok/-/..%2fok%2fpackage.json');
    raw('tarball GET temp-like name', 'GET', '@acme%2fok/-/.tmp-1-aa-ok-1.0.0.tgz');
    raw('packument GET ../', 'GET', '..%2f..%2fconfig.yaml');
    raw('tarball upload ../', 'PUT', '@acme%2fok/-/..%2f..%2f..%2fevil-1.0.0.tgz/-rev/1-a', makeTarball('evil', '1.0.0'));
    raw('tarball upload foreign name', 'PUT', '@acme%2fok/-/evil-1.0.0.tgz/-rev/1-a', makeTarball('evil', '1.0.0'));
    raw('tarball DELETE ../package.json', 'DELETE', '@acme%2fok/-/..%2fpackage.json/-rev/1-a');
    raw('tarball DELETE package.json', 'DELETE', '@acme%2fok/-/package.json/-rev/1-a');
    raw('tarball DELETE ../../.verdaccio-db.json', 'DELETE', '@acme%2fok/-/..%2f..%2f.verdaccio-db.json/-rev/1-a');

    for (const attempt of attempts) {
      const status = await attempt.run();
      assert.ok(status >= 400 && status < 500, `${attempt.label}: expected 4xx, got ${status}`);
    }
    const outsideAfter = [...storedFiles(dirname(registry.storageDir)).keys()].filter((f) => !f.startsWith('storage/')).sort();
    assert.deepEqual(outsideAfter, outsideBefore);
    assert.deepEqual(storageFiles(registry), storageBefore);
    assert.deepEqual(recordNames(registry), recordsBefore);
    assert.equal((await getBytes(tarballUrl(registry.url, '@acme/ok', '1.0.0'))).status, 200);
    assert.match(registry.logs(), /storage ready/);
    assert.doesNotMatch(registry.logs(), /\b500\b.*(ok2|evil)/);
  });
});

describe('publish body Verdaccio itself cannot handle', () => {
  // Stock Verdaccio 6.10.4 asserts isNameValid(filename) in LocalStorage.addTarball before any store
  // plugin is called: the first such PUT got a 500, a repeat threw inside a callback and the process
  // exited (255). The storage part's middleware entry (registry-storage-http) refuses the body first.
  test(
    'an attachment name with an encoded "/" gets a 4xx and the server keeps running',
    async () => {
      const registry = await startRegistry({ editConfig: useOurStorage });
      try {
        const token = await addUser(registry, 'crasher', 'correct-horse-battery');
        const body = publishBody(registry.url, '@acme/ok2', '1.0.0', { attachmentName: '..%2f..%2fok2-1.0.0.tgz' }).body;
        for (const attempt of [1, 2]) {
          let status = 0;
          try {
            status = (await putPackage(registry.url, token, '@acme/ok2', body)).status;
          } catch (error) {
            await new Promise((resolve) => setTimeout(resolve, 200));
            assert.fail(`attempt ${attempt}: the registry dropped the connection (${String(error)}); exit code ${registry.process.exitCode}`);
          }
          assert.ok(status >= 400 && status < 500, `attempt ${attempt}: expected 4xx, got ${status}`);
        }
        assert.equal((await fetch(`${registry.url}/-/ping`)).status, 200);
        assert.equal(registry.process.exitCode, null);
        assert.equal(existsSync(join(registry.storageDir, '@acme', 'ok2')), false);
      } finally {
        await registry.stop();
      }
    },
  );
});
