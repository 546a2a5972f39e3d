/**
 * Real npm 11 and bun against a registry whose `store:` is our plugin: every flow the storage
 * serves, each checked through HTTP, on disk, and in the registry.lockb index.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PackageIndex, summarizeIndex, type IndexRecord } from '../../plugins/registry-core/index';
import { NODE_BIN, PROJECT_ROOT, addUser, createClientDir, run, startRegistry, writePackage, type ClientDir, type RunningRegistry } from '../harness/registry';
import { getBytes, getJson, publishRaw, tarballUrl, useOurStorage } from './lib/packages';

function indexRecords(registry: RunningRegistry): IndexRecord[] {
  const index = PackageIndex.open(registry.lockbPath);
  try {
    return index.readAll();
  } finally {
    index.close();
  }
}

function describeRecords(records: IndexRecord[], name: string): string[] {
  return records.filter((r) => r.name === name).map((r) => `${r.kind} ${r.version} ${r.detail}`.trim());
}

describe('npm and bun flows against registry-storage', () => {
  let registry: RunningRegistry;
  let token: string;
  let publisher: ClientDir;
  const name = '@acme/flow';

  before(async () => {
    registry = await startRegistry({ editConfig: useOurStorage });
    assert.match(registry.logs(), /storage ready: .*storage \(0 packages\)/);
    token = await addUser(registry, 'flow-user', 'correct-horse-battery');
    publisher = createClientDir(registry, { token });
  });
  after(async () => {
    await registry?.stop();
  });

  test('npm publish two versions; packument, tarballs, disk layout and index agree', async () => {
    for (const version of ['1.0.0', '1.1.0']) {
      const pkg = writePackage(publisher.dir, { name, version, extra: { engines: { node: '>=18' }, bin: { flow: 'index.js' } } });
      const published = await publisher.npm(['publish'], { cwd: pkg });
      assert.equal(published.code, 0, published.stderr);
    }
    const { status, json } = await getJson(`${registry.url}/${name.replace('/', '%2f')}`);
    assert.equal(status, 200);
    const versions = json.versions as Record<string, { dist: { integrity: string }; engines?: unknown; bin?: unknown }>;
    assert.deepEqual(Object.keys(versions).sort(), ['1.0.0', '1.1.0']);
    assert.deepEqual(json['dist-tags'], { latest: '1.1.0' });
    // metadata passes through untouched
    assert.deepEqual(versions['1.1.0'].engines, { node: '>=18' });
    assert.deepEqual(versions['1.1.0'].bin, { flow: 'index.js' });
    const dir = join(registry.storageDir, '@acme', 'flow');
    assert.ok(existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'flow-1.0.0.tgz')) && existsSync(join(dir, 'flow-1.1.0.tgz')));
    // the stored packument is compact JSON, in the layout stock Verdaccio reads (issue 18)
    assert.match(readFileSync(join(dir, 'package.json'), 'utf8'), /^\{"name":"@acme\/flow"/);
    const tgz = await getBytes(tarballUrl(registry.url, name, '1.0.0'));
    assert.equal(tgz.status, 200);
    assert.equal(`sha512-${createHash('sha512').update(tgz.bytes).digest('base64')}`, versions['1.0.0'].dist.integrity);
    assert.deepEqual(describeRecords(indexRecords(registry), name), ['publish 1.0.0', 'dist-tag 1.0.0 latest', 'publish 1.1.0', 'dist-tag 1.1.0 latest']);
    const db = JSON.parse(readFileSync(join(registry.storageDir, '.verdaccio-db.json'), 'utf8')) as { list: string[]; secret: string };
    assert.ok(db.list.includes(name));
    assert.equal(db.secret.length, 32);
  });

  test('npm install from a clean cache', async () => {
    const consumer = createClientDir(registry);
    const app = writePackage(consumer.dir, { name: 'consumer-app', version: '0.0.0' });
    const installed = await consumer.npm(['install', `${name}@1.0.0`], { cwd: app });
    assert.equal(installed.code, 0, installed.stderr);
    assert.match(readFileSync(join(app, 'node_modules', '@acme', 'flow', 'index.js'), 'utf8'), /@acme\/flow@1\.0\.0/);
  });

  test('npm dist-tag add / rm', async () => {
    const added = await publisher.npm(['dist-tag', 'add', `${name}@1.0.0`, 'beta']);
    assert.equal(added.code, 0, added.stderr);
    const listed = await publisher.npm(['dist-tag', 'ls', name]);
    assert.match(listed.stdout, /beta: 1\.0\.0/);
    const removed = await publisher.npm(['dist-tag', 'rm', name, 'beta']);
    assert.equal(removed.code, 0, removed.stderr);
    const after = await getJson(`${registry.url}/${name.replace('/', '%2f')}`);
    assert.deepEqual(after.json['dist-tags'], { latest: '1.1.0' });
    const records = describeRecords(indexRecords(registry), name);
    assert.deepEqual(records.slice(-2), ['dist-tag 1.0.0 beta', 'dist-tag-rm 1.0.0 beta']);
  });

  test('npm deprecate', async () => {
    const deprecated = await publisher.npm(['deprecate', `${name}@1.0.0`, 'use 1.1.0']);
    assert.equal(deprecated.code, 0, deprecated.stderr);
    const { json } = await getJson(`${registry.url}/${name.replace('/', '%2f')}`);
    const versions = json.versions as Record<string, { deprecated?: string }>;
    assert.equal(versions['1.0.0'].deprecated, 'use 1.1.0');
    assert.equal(versions['1.1.0'].deprecated, undefined);
    assert.deepEqual(describeRecords(indexRecords(registry), name).slice(-1), ['deprecate 1.0.0 use 1.1.0']);
  });

  test('npm search finds the package', async () => {
    const found = await publisher.npm(['search', 'flow', '--json']);
    assert.equal(found.code, 0, found.stderr);
    const hits = JSON.parse(found.stdout) as Array<{ name: string }>;
    assert.ok(hits.some((hit) => hit.name === name), found.stdout);
  });

  test('npm unpublish one version', async () => {
    const unpublished = await publisher.npm(['unpublish', `${name}@1.1.0`, '--force']);
    assert.equal(unpublished.code, 0, unpublished.stderr);
    const { json } = await getJson(`${registry.url}/${name.replace('/', '%2f')}`);
    assert.deepEqual(Object.keys(json.versions as object), ['1.0.0']);
    assert.equal((await getBytes(tarballUrl(registry.url, name, '1.1.0'))).status, 404);
    assert.equal((await getBytes(tarballUrl(registry.url, name, '1.0.0'))).status, 200);
    assert.equal(existsSync(join(registry.storageDir, '@acme', 'flow', 'flow-1.1.0.tgz')), false);
    const records = describeRecords(indexRecords(registry), name);
    assert.ok(records.includes('unpublish 1.1.0'), records.join('\n'));
  });

  test('npm unpublish the whole package', async () => {
    const unpublished = await publisher.npm(['unpublish', name, '--force']);
    assert.equal(unpublished.code, 0, unpublished.stderr);
    assert.equal((await getJson(`${registry.url}/${name.replace('/', '%2f')}`)).status, 404);
    assert.equal(existsSync(join(registry.storageDir, '@acme', 'flow', 'package.json')), false);
    assert.equal((await getBytes(tarballUrl(registry.url, name, '1.0.0'))).status, 404);
    const records = describeRecords(indexRecords(registry), name);
    assert.equal(records.at(-1), 'unpublish-package');
    const db = JSON.parse(readFileSync(join(registry.storageDir, '.verdaccio-db.json'), 'utf8')) as { list: string[] };
    assert.ok(!db.list.includes(name));
  });

  test('bun publish, then bun install from a clean cache', async () => {
    const pkg = writePackage(publisher.dir, { name: 'bun-flow', version: '3.0.0' });
    const published = await publisher.bun(['publish'], { cwd: pkg });
    assert.equal(published.code, 0, `${published.stdout}\n${published.stderr}`);
    const consumer = createClientDir(registry);
    const app = writePackage(consumer.dir, { name: 'consumer-bun', version: '0.0.0' });
    const installed = await consumer.bun(['add', 'bun-flow@3.0.0'], { cwd: app });
    assert.equal(installed.code, 0, `${installed.stdout}\n${installed.stderr}`);
    assert.match(readFileSync(join(app, 'node_modules', 'bun-flow', 'index.js'), 'utf8'), /bun-flow@3\.0\.0/);
    assert.deepEqual(describeRecords(indexRecords(registry), 'bun-flow'), ['publish 3.0.0', 'dist-tag 3.0.0 latest']);
  });

  test('republishing an existing version is refused with 409 and changes nothing', async () => {
    const pkg = writePackage(publisher.dir, { name: 'bun-flow', version: '3.0.0', files: { 'index.js': 'different\n' } });
    const before = readFileSync(join(registry.storageDir, 'bun-flow', 'bun-flow-3.0.0.tgz'));
    const again = await publisher.npm(['publish'], { cwd: pkg });
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /409|already present|already exists|cannot publish over/i);
    assert.ok(readFileSync(join(registry.storageDir, 'bun-flow', 'bun-flow-3.0.0.tgz')).equals(before));
  });

  test('npm run config -- rebuild-index, on the running registry: same packages, versions and tags; appends continue', async () => {
    const summary = (): string[] =>
      summarizeIndex(indexRecords(registry)).map((item) => `${item.name} ${[...item.versions].sort().join(',')} ${JSON.stringify(item.distTags)}`);
    const before = summary();
    assert.ok(before.some((line) => line.startsWith('bun-flow 3.0.0 ')), before.join('\n'));
    const rebuilt = await run(NODE_BIN, [join(PROJECT_ROOT, 'build', 'scripts', 'config-cli.js'), '--config', registry.configPath, 'rebuild-index']);
    assert.equal(rebuilt.code, 0, rebuilt.stderr);
    assert.match(rebuilt.stdout, /rebuilt the package index/);
    assert.deepEqual(summary(), before);
    // the server's descriptors survive the rebuild (same inode): its next record lands in the file
    const published = await publishRaw(registry.url, token, 'bun-flow', '3.1.0');
    assert.equal(published.status, 201, published.text);
    assert.deepEqual(describeRecords(indexRecords(registry), 'bun-flow').slice(-2), ['publish 3.1.0', 'dist-tag 3.1.0 latest']);
  });
});
