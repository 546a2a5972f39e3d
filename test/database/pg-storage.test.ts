/**
 * 14.x the storage part on PostgreSQL (docs/database.md): real PostgreSQL (a private cluster,
 * test/harness/postgres.ts), real registries (our start script + Verdaccio) on one database,
 * real npm. One database per test; the registries of a test share it as nodes of one cluster.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Client } from 'pg';
import { PackageIndex, type IndexRecord } from '../../plugins/registry-core/index';
import { usePostgres } from '../harness/postgres';
import { NODE_BIN, PROJECT_ROOT, addUser, createClientDir, run, startRegistry, writePackage, type RunningRegistry } from '../harness/registry';
import { getBytes, getJson, makeTarball, publishRaw, sha512Base64, tarballUrl } from '../storage/lib/packages';

const running: RunningRegistry[] = [];
// registries stop before the cluster goes (after hooks run in order)
after(async () => {
  await Promise.all(running.map((registry) => registry.stop()));
});
const postgres = usePostgres();

/** A node of the cluster: a registry in its own folder on the database `url`. */
async function node(url: string, options: { dir?: string; viaConfig?: boolean } = {}): Promise<RunningRegistry> {
  const registry = await startRegistry(
    options.viaConfig
      ? // config.yaml's store section instead of the environment (docs/database.md "Choosing the backend")
        { dir: options.dir, editConfig: (config) => void (config.store = { 'registry-storage': { backend: 'postgres', database_url: url } }) }
      : { dir: options.dir, env: { REGISTRY_DATABASE_URL: url } },
  );
  running.push(registry);
  return registry;
}

async function rows<T>(url: string, sql: string, values: unknown[] = []): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, values)).rows as T[];
  } finally {
    await client.end();
  }
}

function lockbRecords(registry: RunningRegistry): IndexRecord[] {
  const index = PackageIndex.open(registry.lockbPath);
  try {
    return index.readAll();
  } finally {
    index.close();
  }
}

/** Bounded wait for a condition another process makes true (the mirror of a second node). */
async function eventually(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    if (await check()) return;
    await new Promise((resolveWait) => setTimeout(resolveWait, 50));
  }
  assert.fail(`${what} (waited 10 s)`);
}

test('14.1 npm publish through node A, npm install through node B: byte-identical; search, the dashboard list and both registry.lockb mirrors see it; dist-tag, deprecate, unpublish through B', async (t) => {
  const pg = postgres();
  if (!pg.ok) return t.skip(pg.reason);
  const url = await pg.cluster.createDatabase('pg_publish');
  const [a, b] = await Promise.all([node(url), node(url, { viaConfig: true })]);
  for (const registry of [a, b]) assert.match(registry.logs(), /storage ready: PostgreSQL postgres:\/\/registry@127\.0\.0\.1:\d+\/pg_publish/);
  const tokenA = await addUser(a, 'alice', 'correct-horse-battery');
  const tokenB = await addUser(b, 'alice', 'correct-horse-battery');

  const publisher = createClientDir(a, { token: tokenA });
  const pkgDir = writePackage(publisher.dir, { name: '@mycompany/pg-lib', version: '1.2.3', extra: { description: 'shared on postgres', keywords: ['pgtest'] } });
  const published = await publisher.npm(['publish'], { cwd: pkgDir });
  assert.equal(published.code, 0, published.stderr);

  // nothing of it on node A's disk: the database holds it
  const stored = await rows<{ package: string; file: string; sha512: string }>(url, 'SELECT package, file, sha512 FROM tarballs');
  assert.deepEqual(stored.map((row) => `${row.package}/${row.file}`), ['@mycompany/pg-lib/pg-lib-1.2.3.tgz']);

  const consumer = createClientDir(b, { token: tokenB });
  const app = writePackage(consumer.dir, { name: 'pg-consumer', version: '0.0.0', extra: { dependencies: { '@mycompany/pg-lib': '1.2.3' } } });
  const installed = await consumer.npm(['install'], { cwd: app });
  assert.equal(installed.code, 0, installed.stderr);
  assert.equal(readFileSync(join(app, 'node_modules', '@mycompany', 'pg-lib', 'index.js'), 'utf8'), readFileSync(join(pkgDir, 'index.js'), 'utf8'));
  const fromA = await getBytes(tarballUrl(a.url, '@mycompany/pg-lib', '1.2.3'));
  const fromB = await getBytes(tarballUrl(b.url, '@mycompany/pg-lib', '1.2.3'));
  assert.equal(fromB.status, 200);
  assert.ok(fromA.bytes.equals(fromB.bytes));
  assert.equal(createHash('sha512').update(fromB.bytes).digest('hex'), stored[0].sha512);

  // search (npm's own client) and the dashboard list, on the node that did not publish
  const search = await consumer.npm(['search', 'pgtest', '--json']);
  assert.equal(search.code, 0, search.stderr);
  assert.deepEqual((JSON.parse(search.stdout) as Array<{ name: string }>).map((hit) => hit.name), ['@mycompany/pg-lib']);
  const list = await fetch(`${b.url}/_dashboard/api/packages`, { headers: { authorization: `Bearer ${tokenB}` } });
  assert.equal(list.status, 200);
  const listed = (await list.json()) as { packages?: Array<{ name: string; versions: string[] }> } | Array<{ name: string; versions: string[] }>;
  const entries = Array.isArray(listed) ? listed : (listed.packages ?? []);
  assert.deepEqual(entries.map((entry) => [entry.name, entry.versions]), [['@mycompany/pg-lib', ['1.2.3']]]);

  // both mirrors hold exactly the shared index's bytes
  const shared = await rows<{ record: Buffer }>(url, 'SELECT record FROM package_index ORDER BY id');
  assert.ok(shared.length >= 2, 'publish + dist-tag records');
  for (const registry of [a, b]) {
    await eventually(`${registry.url}: registry.lockb mirrors the shared index`, () => {
      const onFile = lockbRecords(registry);
      return onFile.length === shared.length;
    });
    const header = 17;
    const file = readFileSync(registry.lockbPath);
    assert.ok(file.subarray(header).equals(Buffer.concat(shared.map((row) => row.record))), `${registry.url}: mirror bytes differ from package_index`);
  }

  // more writes through B, seen through A: a second version, a dist-tag, a deprecation, then unpublish
  const second = writePackage(consumer.dir, { name: '@mycompany/pg-lib', version: '1.3.0' });
  assert.equal((await consumer.npm(['publish', '--tag', 'next'], { cwd: second })).code, 0);
  const tagged = await consumer.npm(['dist-tag', 'add', '@mycompany/pg-lib@1.3.0', 'stable']);
  assert.equal(tagged.code, 0, tagged.stderr);
  const deprecated = await consumer.npm(['deprecate', '@mycompany/pg-lib@1.2.3', 'use 1.3']);
  assert.equal(deprecated.code, 0, deprecated.stderr);
  const seen = await getJson(`${a.url}/@mycompany%2fpg-lib`);
  assert.deepEqual(seen.json['dist-tags'], { latest: '1.2.3', next: '1.3.0', stable: '1.3.0' });
  assert.equal((seen.json.versions as Record<string, { deprecated?: string }>)['1.2.3'].deprecated, 'use 1.3');
  const gone = await consumer.npm(['unpublish', '@mycompany/pg-lib', '--force']);
  assert.equal(gone.code, 0, gone.stderr);
  assert.equal((await getJson(`${a.url}/@mycompany%2fpg-lib`)).status, 404);
  assert.equal((await getBytes(tarballUrl(a.url, '@mycompany/pg-lib', '1.2.3'))).status, 404);
  assert.deepEqual(await rows(url, 'SELECT name FROM packuments UNION ALL SELECT file FROM tarballs'), []);
  const kinds = (await rows<{ record: Buffer }>(url, 'SELECT record FROM package_index ORDER BY id')).length;
  await eventually('node A mirrors the unpublish', () => lockbRecords(a).length === kinds && lockbRecords(a).some((record) => record.kind === 'unpublish-package'));
  // the config CLI never rebuilds a mirror from the (empty) storage folder of a PostgreSQL node
  const rebuilt = await run(NODE_BIN, [join(PROJECT_ROOT, 'bin', 'registry.js'), 'config', '--config', b.configPath, 'rebuild-index']);
  assert.equal(rebuilt.code, 1);
  assert.match(rebuilt.stderr, /not rebuilt: this registry keeps its packages in PostgreSQL/);
  assert.equal(lockbRecords(b).length, kinds);
});

test('14.2 30 concurrent publishes of distinct versions of one package, spread over two nodes: all land, one index record each', async (t) => {
  const pg = postgres();
  if (!pg.ok) return t.skip(pg.reason);
  const url = await pg.cluster.createDatabase('pg_many');
  const nodes = await Promise.all([node(url), node(url)]);
  // users are shared on PostgreSQL: register on one node, then log in on the other (two
  // registrations of one name at once are a race one of them rightly loses with 409)
  const tokens: string[] = [];
  for (const registry of nodes) tokens.push(await addUser(registry, 'racer', 'correct-horse-battery'));
  const name = '@mycompany/many';
  // the package exists first (its first maintainer is recorded by one publish), then 30 race
  assert.equal((await publishRaw(nodes[0].url, tokens[0], name, '0.0.1')).status, 201);
  const versions = Array.from({ length: 30 }, (_, i) => `1.0.${i}`);
  const results = await Promise.all(versions.map((version, i) => publishRaw(nodes[i % 2].url, tokens[i % 2], name, version)));
  results.forEach((result, i) => assert.equal(result.status, 201, `${versions[i]}: ${result.status} ${result.text}`));
  for (const registry of nodes) {
    const { json } = await getJson(`${registry.url}/@mycompany%2fmany`);
    assert.deepEqual(Object.keys(json.versions as object).sort(), ['0.0.1', ...versions].sort());
  }
  for (const [i, version] of versions.entries()) {
    const tgz = await getBytes(tarballUrl(nodes[(i + 1) % 2].url, name, version));
    assert.ok(tgz.bytes.equals(results[i].tarball), `${version}: served bytes differ`);
  }
  const shared = await rows<{ record: Buffer }>(url, 'SELECT record FROM package_index ORDER BY id');
  for (const registry of nodes) {
    await eventually(`${registry.url} mirrors the whole shared index`, () => lockbRecords(registry).length === shared.length);
    assert.ok(readFileSync(registry.lockbPath).subarray(17).equals(Buffer.concat(shared.map((row) => row.record))), `${registry.url}: mirror bytes differ from package_index`);
    const published = lockbRecords(registry).filter((record) => record.name === name && record.kind === 'publish');
    assert.deepEqual(published.map((record) => record.version).sort(), ['0.0.1', ...versions].sort(), 'one publish record per version');
  }
});

test('14.3 the same version through two nodes at once: exactly one 201 and one 409, the winner is served by both (10 rounds; a losing upload never disturbs a later round)', async (t) => {
  const pg = postgres();
  if (!pg.ok) return t.skip(pg.reason);
  const url = await pg.cluster.createDatabase('pg_duel');
  const nodes = await Promise.all([node(url), node(url)]);
  // users are shared on PostgreSQL: register on one node, then log in on the other (two
  // registrations of one name at once are a race one of them rightly loses with 409)
  const tokens: string[] = [];
  for (const registry of nodes) tokens.push(await addUser(registry, 'racer', 'correct-horse-battery'));
  const name = '@mycompany/duel';
  const ROUNDS = 10;
  for (let round = 0; round < ROUNDS; round += 1) {
    const version = `2.0.${round}`;
    const contenders = ['left', 'right'].map((side) => makeTarball(name, version, { 'side.txt': `${side} ${round}\n`.repeat(side === 'left' ? 1 : 50) }));
    const results = await Promise.all(contenders.map((tarball, i) => publishRaw(nodes[i].url, tokens[i], name, version, { tarball })));
    assert.deepEqual(results.map((r) => r.status).sort(), [201, 409], `round ${round}: ${results.map((r) => `${r.status} ${r.text}`).join(' | ')}`);
    const winner = results.findIndex((r) => r.status === 201);
    for (const registry of nodes) {
      const tgz = await getBytes(tarballUrl(registry.url, name, version));
      assert.ok(tgz.bytes.equals(contenders[winner]), `round ${round}: ${registry.url} serves the loser's bytes`);
      const { json } = await getJson(`${registry.url}/@mycompany%2fduel`);
      const dist = (json.versions as Record<string, { dist: { integrity: string } }>)[version].dist;
      assert.equal(dist.integrity, `sha512-${sha512Base64(contenders[winner])}`);
    }
  }
  const counted = await rows<{ n: number }>(url, "SELECT count(*)::int AS n FROM tarballs WHERE package = $1", [name]);
  assert.equal(counted[0].n, ROUNDS);
});

test('14.4 kill -9 a node during a stream of publishes: every acknowledged version survives byte-identical, nothing half-stored, the restarted node mirrors the index', async (t) => {
  const pg = postgres();
  if (!pg.ok) return t.skip(pg.reason);
  const url = await pg.cluster.createDatabase('pg_kill');
  const victim = await node(url);
  const token = await addUser(victim, 'racer', 'correct-horse-battery');
  const name = '@mycompany/stream';
  const acknowledged = new Map<string, Buffer>();
  let killed = false;
  // 4 publishers in a row each; the node is killed once 12 publishes were acknowledged
  const publisher = async (lane: number): Promise<void> => {
    for (let i = 0; i < 200 && !killed; i += 1) {
      const version = `3.${lane}.${i}`;
      const tarball = makeTarball(name, version, { 'lane.txt': `${lane}:${i}\n`.repeat(1 + i) });
      try {
        const result = await publishRaw(victim.url, token, name, version, { tarball });
        if (result.status === 201) acknowledged.set(version, tarball);
      } catch {
        return; // the connection died with the node: not acknowledged
      }
      if (acknowledged.size >= 12 && !killed) {
        killed = true;
        victim.process.kill('SIGKILL');
      }
    }
  };
  assert.equal((await publishRaw(victim.url, token, name, '3.9.0')).status, 201);
  await Promise.all([0, 1, 2, 3].map(publisher));
  await new Promise((resolveExit) => (victim.process.exitCode !== null || victim.process.signalCode !== null ? resolveExit(null) : victim.process.once('exit', resolveExit)));
  assert.ok(acknowledged.size >= 12);

  const survivor = await node(url, { dir: victim.dir });
  const { json } = await getJson(`${survivor.url}/@mycompany%2fstream`);
  const versions = json.versions as Record<string, unknown>;
  for (const [version, tarball] of acknowledged) {
    assert.ok(version in versions, `acknowledged ${version} is missing after kill -9`);
    const tgz = await getBytes(tarballUrl(survivor.url, name, version));
    assert.ok(tgz.bytes.equals(tarball), `${version}: bytes differ after kill -9`);
  }
  // nothing half-stored: every tarball row belongs to a listed version and every version has its tarball
  const files = (await rows<{ file: string }>(url, 'SELECT file FROM tarballs WHERE package = $1', [name])).map((row) => row.file).sort();
  assert.deepEqual(files, Object.keys(versions).map((version) => `stream-${version}.tgz`).sort());
  const shared = await rows<{ record: Buffer }>(url, 'SELECT record FROM package_index ORDER BY id');
  await eventually('the restarted node mirrors the shared index', () => readFileSync(survivor.lockbPath).subarray(17).equals(Buffer.concat(shared.map((row) => row.record))));
  const ready = await fetch(`${survivor.url}/-/ready`);
  assert.equal(ready.status, 200);
  // 'reachable' (the storage part's check) or the cluster part's 'connected, listening'
  assert.match(((await ready.json()) as { checks: Record<string, string> }).checks.database, /^(reachable|connected)/);
});

test('14.6 PostgreSQL stops: the node stays up, is not ready, answers writes 503 and changes nothing; PostgreSQL back: it serves and publishes again', async (t) => {
  const pg = postgres();
  if (!pg.ok) return t.skip(pg.reason);
  const url = await pg.cluster.createDatabase('pg_outage');
  const registry = await node(url);
  const token = await addUser(registry, 'racer', 'correct-horse-battery');
  const name = '@mycompany/outage';
  assert.equal((await publishRaw(registry.url, token, name, '1.0.0')).status, 201);
  await pg.cluster.stop();
  try {
    const ready = await fetch(`${registry.url}/-/ready`);
    assert.equal(ready.status, 503);
    assert.match(((await ready.json()) as { checks: Record<string, string> }).checks.database, /^unreachable/);
    const refused = await publishRaw(registry.url, token, name, '1.0.1');
    assert.equal(refused.status, 503, refused.text);
    assert.match(refused.text, /database is unavailable/);
    assert.equal(registry.process.exitCode, null, 'the node is still running');
  } finally {
    await pg.cluster.restart();
  }
  await eventually('the node is ready again', async () => (await fetch(`${registry.url}/-/ready`)).status === 200);
  assert.equal((await publishRaw(registry.url, token, name, '1.0.1')).status, 201);
  const { json } = await getJson(`${registry.url}/@mycompany%2foutage`);
  assert.deepEqual(Object.keys(json.versions as object).sort(), ['1.0.0', '1.0.1']);
});
