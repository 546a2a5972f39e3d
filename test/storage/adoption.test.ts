/**
 * A storage folder written by STOCK Verdaccio 6.10.4 (its own CLI, default local storage,
 * htpasswd, real npm publishes) is served unchanged once our registry points at it.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { freePort } from '../../scripts/lib/ports';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PackageIndex, summarizeIndex } from '../../plugins/registry-core/index';
import { NODE_BIN, PROJECT_ROOT, addUser, cleanEnv, createClientDir, startRegistry, writePackage, type RunningRegistry } from '../harness/registry';
import { getBytes, getJson, publishRaw, tarballUrl, useOurStorage } from './lib/packages';

const PACKAGES: Array<{ name: string; versions: string[] }> = [
  { name: '@legacy/alpha', versions: ['1.0.0', '1.1.0'] },
  { name: 'legacy-beta', versions: ['2.0.0'] },
];

async function startStock(dir: string): Promise<{ url: string; child: ChildProcess; logs: () => string }> {
  writeFileSync(
    join(dir, 'config.yaml'),
    [
      'storage: ./storage',
      'auth:',
      '  htpasswd:',
      '    file: ./htpasswd',
      'uplinks: {}',
      'packages:',
      "  '@*/*': { access: $all, publish: $authenticated, unpublish: $authenticated }",
      "  '**': { access: $all, publish: $authenticated, unpublish: $authenticated }",
      'log: { type: stdout, format: pretty, level: warn }',
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const child = spawn(NODE_BIN, [join(PROJECT_ROOT, 'node_modules', 'verdaccio', 'bin', 'verdaccio'), '-c', join(dir, 'config.yaml'), '--listen', `127.0.0.1:${port}`], {
    cwd: dir,
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const url = `http://127.0.0.1:${port}`;
  for (let attempt = 0; attempt < 300; attempt += 1) {
    if (child.exitCode !== null) throw new Error(`stock verdaccio exited: ${output}`);
    try {
      if ((await fetch(`${url}/-/ping`)).ok) return { url, child, logs: () => output };
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`stock verdaccio never answered /-/ping: ${output}`);
}

function snapshot(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const full = join(dir, entry);
    if (statSync(full).isFile()) files.set(relative(dir, full), createHash('sha256').update(readFileSync(full)).digest('hex'));
  }
  return files;
}

/** Tarball URLs carry the serving host; everything else must be identical. */
function normalise(json: Record<string, unknown>, url: string): string {
  return JSON.stringify(json).split(url).join('<registry>');
}

describe('adopting a storage folder written by stock Verdaccio', () => {
  const stockDir = mkdtempSync(join(tmpdir(), 'stock-verdaccio-'));
  const stockStorage = join(stockDir, 'storage');
  const stockPackuments = new Map<string, string>();
  const stockTarballs = new Map<string, Buffer>();
  let stockSecret = '';
  let stockFiles: Map<string, string>;
  let registry: RunningRegistry;

  before(async () => {
    const stock = await startStock(stockDir);
    try {
      const token = await addUser(stock, 'old-timer', 'correct-horse-battery');
      const client = createClientDir(stock, { token });
      for (const { name, versions } of PACKAGES) {
        for (const version of versions) {
          const pkg = writePackage(client.dir, { name, version, extra: { engines: { node: '>=18' } } });
          const published = await client.npm(['publish'], { cwd: pkg });
          assert.equal(published.code, 0, `stock publish ${name}@${version}: ${published.stderr}`);
        }
      }
      assert.equal((await client.npm(['dist-tag', 'add', '@legacy/alpha@1.0.0', 'stable'])).code, 0);
      assert.equal((await client.npm(['deprecate', '@legacy/alpha@1.0.0', 'old line'])).code, 0);
      for (const { name, versions } of PACKAGES) {
        const { status, json } = await getJson(`${stock.url}/${name.replace('/', '%2f')}`);
        assert.equal(status, 200);
        stockPackuments.set(name, normalise(json, stock.url));
        for (const version of versions) {
          const tgz = await getBytes(tarballUrl(stock.url, name, version));
          assert.equal(tgz.status, 200);
          stockTarballs.set(`${name}@${version}`, tgz.bytes);
        }
      }
    } finally {
      stock.child.kill('SIGTERM');
      await new Promise((resolve) => stock.child.once('exit', resolve));
    }
    stockSecret = (JSON.parse(readFileSync(join(stockStorage, '.verdaccio-db.json'), 'utf8')) as { secret: string }).secret;
    stockFiles = snapshot(stockStorage);
    registry = await startRegistry({
      editConfig: (config) => {
        useOurStorage(config);
        config.storage = stockStorage;
      },
    });
  });
  after(async () => {
    await registry?.stop();
  });

  test('start-up indexes the adopted packages and changes no file of the stock storage', () => {
    assert.match(registry.logs(), /storage ready: .*\(2 packages\)/);
    assert.match(registry.logs(), /rebuilt the index from storage/);
    const now = snapshot(stockStorage);
    for (const [file, hash] of stockFiles) assert.equal(now.get(file), hash, `${file} was changed`);
    const index = PackageIndex.open(registry.lockbPath);
    const summary = summarizeIndex(index.readAll());
    index.close();
    assert.deepEqual(
      summary.map((item) => `${item.name} ${item.versions.join(',')} ${JSON.stringify(item.distTags)}`),
      ['@legacy/alpha 1.0.0,1.1.0 {"latest":"1.1.0","stable":"1.0.0"}', 'legacy-beta 2.0.0 {"latest":"2.0.0"}'],
    );
  });

  test('packuments and tarballs are served exactly as stock served them (plus registry signatures, 13.4)', async () => {
    for (const { name, versions } of PACKAGES) {
      const { status, json } = await getJson(`${registry.url}/${name.replace('/', '%2f')}`);
      assert.equal(status, 200);
      // adopted versions carry no signatures on disk; the registry signs them on read (docs/signatures.md)
      for (const meta of Object.values(json.versions as Record<string, { dist: { signatures?: unknown[] } }>)) {
        assert.equal(meta.dist.signatures?.length, 1, `${name}: a registry signature`);
        delete meta.dist.signatures;
      }
      assert.equal(normalise(json, registry.url), stockPackuments.get(name));
      for (const version of versions) {
        const tgz = await getBytes(tarballUrl(registry.url, name, version));
        assert.equal(tgz.status, 200);
        assert.ok(tgz.bytes.equals(stockTarballs.get(`${name}@${version}`)!), `${name}@${version} differs`);
      }
    }
  });

  test('npm installs the adopted packages from a clean cache; publishing continues on them', async () => {
    const consumer = createClientDir(registry);
    const app = writePackage(consumer.dir, { name: 'adopter', version: '0.0.0' });
    const installed = await consumer.npm(['install', '@legacy/alpha@1.1.0', 'legacy-beta@2.0.0'], { cwd: app });
    assert.equal(installed.code, 0, installed.stderr);
    assert.match(readFileSync(join(app, 'node_modules', '@legacy', 'alpha', 'index.js'), 'utf8'), /1\.1\.0/);

    const token = await addUser(registry, 'new-timer', 'correct-horse-battery');
    const published = await publishRaw(registry.url, token, '@legacy/alpha', '1.2.0');
    assert.equal(published.status, 201, published.text);
    const { json } = await getJson(`${registry.url}/@legacy%2falpha`);
    assert.deepEqual(Object.keys(json.versions as object).sort(), ['1.0.0', '1.1.0', '1.2.0']);
    assert.equal((json.versions as Record<string, { deprecated?: string }>)['1.0.0'].deprecated, 'old line');
    // the stock secret (and with it stock's tokens) is kept
    assert.equal((JSON.parse(readFileSync(join(stockStorage, '.verdaccio-db.json'), 'utf8')) as { secret: string }).secret, stockSecret);
  });

  test('11.8 an adopted package without maintainers: its next authenticated publisher becomes the maintainer, others are then refused', async () => {
    // stock stored no owners for legacy-beta: any user allowed by `packages:` may publish it
    const first = await addUser(registry, 'first-claim', 'correct-horse-battery');
    const claimed = await publishRaw(registry.url, first, 'legacy-beta', '2.1.0');
    assert.equal(claimed.status, 201, claimed.text);
    const { json } = await getJson(`${registry.url}/legacy-beta`);
    assert.deepEqual((json.maintainers as Array<{ name: string }>).map((m) => m.name), ['first-claim']);
    const other = await addUser(registry, 'second-claim', 'correct-horse-battery');
    const refused = await publishRaw(registry.url, other, 'legacy-beta', '2.2.0');
    assert.equal(refused.status, 403, refused.text);
    assert.match((JSON.parse(refused.text) as { error: string }).error, /maintainers \(first-claim\)/);
  });
});
