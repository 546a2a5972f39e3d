/**
 * Concurrent publishes through the real server: distinct versions all land (Verdaccio's own
 * storage loses some), the same version twice has exactly one winner whose bytes are served.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PackageIndex } from '../../plugins/registry-core/index';
import { addUser, createClientDir, startRegistry, writePackage, type RunningRegistry } from '../harness/registry';
import { getBytes, getJson, makeTarball, publishRaw, sha512Base64, tarballUrl, useOurStorage } from './lib/packages';

describe('concurrent publishes against registry-storage', () => {
  let registry: RunningRegistry;
  let token: string;

  before(async () => {
    registry = await startRegistry({ editConfig: useOurStorage });
    token = await addUser(registry, 'racer', 'correct-horse-battery');
  });
  after(async () => {
    await registry?.stop();
  });

  test('30 concurrent publishes of distinct versions of one (new) package: all 30 present and installable', async () => {
    const name = '@acme/many';
    const versions = Array.from({ length: 30 }, (_, i) => `1.0.${i}`);
    const results = await Promise.all(versions.map((version) => publishRaw(registry.url, token, name, version)));
    results.forEach((result, i) => assert.equal(result.status, 201, `${versions[i]}: ${result.status} ${result.text}`));

    const { json } = await getJson(`${registry.url}/@acme%2fmany`);
    const served = json.versions as Record<string, { dist: { integrity: string } }>;
    assert.deepEqual(Object.keys(served).sort(), [...versions].sort());
    for (const [i, version] of versions.entries()) {
      const tgz = await getBytes(tarballUrl(registry.url, name, version));
      assert.equal(tgz.status, 200);
      assert.ok(tgz.bytes.equals(results[i].tarball), `${version}: served bytes differ from the published ones`);
      assert.equal(served[version].dist.integrity, `sha512-${sha512Base64(tgz.bytes)}`);
    }

    // installable: one npm install and one bun install of all 30 versions through aliases
    const consumer = createClientDir(registry);
    const app = writePackage(consumer.dir, { name: 'many-consumer', version: '0.0.0' });
    const dependencies = Object.fromEntries(versions.map((version, i) => [`many-${i}`, `npm:${name}@${version}`]));
    const manifest = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(app, 'package.json'), JSON.stringify({ ...manifest, dependencies }, null, 2));
    const npmInstall = await consumer.npm(['install'], { cwd: app });
    assert.equal(npmInstall.code, 0, npmInstall.stderr);
    for (const [i, version] of versions.entries()) {
      assert.match(readFileSync(join(app, 'node_modules', `many-${i}`, 'index.js'), 'utf8'), new RegExp(`${version.replace(/\./g, '\\.')}`));
    }
    const bunConsumer = createClientDir(registry);
    const bunApp = writePackage(bunConsumer.dir, { name: 'many-bun', version: '0.0.0' });
    writeFileSync(join(bunApp, 'package.json'), JSON.stringify({ name: 'many-bun', version: '0.0.0', dependencies }, null, 2));
    const bunInstall = await bunConsumer.bun(['install'], { cwd: bunApp });
    assert.equal(bunInstall.code, 0, `${bunInstall.stdout}\n${bunInstall.stderr}`);
    assert.match(readFileSync(join(bunApp, 'node_modules', 'many-29', 'index.js'), 'utf8'), /1\.0\.29/);

    const index = PackageIndex.open(registry.lockbPath);
    const published = index.readAll().filter((r) => r.name === name && r.kind === 'publish');
    index.close();
    assert.deepEqual(published.map((r) => r.version).sort(), [...versions].sort());
    for (const record of published) {
      const i = versions.indexOf(record.version);
      assert.equal(record.sha512, createHash('sha512').update(results[i].tarball).digest('hex'));
    }
  });

  test('two concurrent publishes of the same version: one 201, one 409, the winner is served (6 rounds)', async () => {
    const name = '@acme/duel';
    for (let round = 0; round < 6; round += 1) {
      const version = `2.0.${round}`;
      const contenders = ['left', 'right'].map((side) => makeTarball(name, version, { 'side.txt': `${side} ${round}\n`.repeat(side === 'left' ? 1 : 50) }));
      const results = await Promise.all(contenders.map((tarball) => publishRaw(registry.url, token, name, version, { tarball })));
      const statuses = results.map((r) => r.status).sort();
      assert.deepEqual(statuses, [201, 409], `round ${round}: ${results.map((r) => `${r.status} ${r.text}`).join(' | ')}`);
      const winner = results.findIndex((r) => r.status === 201);
      const tgz = await getBytes(tarballUrl(registry.url, name, version));
      assert.equal(tgz.status, 200);
      assert.ok(tgz.bytes.equals(contenders[winner]), `round ${round}: the served tarball is not the accepted one`);
      const { json } = await getJson(`${registry.url}/@acme%2fduel`);
      const meta = (json.versions as Record<string, { dist: { integrity: string } }>)[version];
      assert.equal(meta.dist.integrity, `sha512-${sha512Base64(contenders[winner])}`);
    }
  });
});
