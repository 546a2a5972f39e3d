/**
 * 14.5 `registry migrate`: a file registry with 200 versions (published through a real server)
 * into PostgreSQL — served from there by a node — and back into a fresh folder: identical
 * (byte-identical tarballs, the same versions and dist-tags, the same index records); a non-empty
 * target is refused with what it holds.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PackageIndex, type IndexRecord } from '../../plugins/registry-core/index';
import { tryStartPostgres, type PostgresStart } from '../harness/postgres';
import { NODE_BIN, PROJECT_ROOT, addUser, run, startRegistry, type RunningRegistry } from '../harness/registry';
import { getBytes, getJson, publishRaw, tarballUrl } from '../storage/lib/packages';

let pg: PostgresStart;
const running: RunningRegistry[] = [];
before(async () => {
  pg = await tryStartPostgres();
});
after(async () => {
  await Promise.all(running.map((registry) => registry.stop()));
  if (pg.ok) await pg.cluster.destroy();
});

function migrate(args: string[]): ReturnType<typeof run> {
  return run(NODE_BIN, [join(PROJECT_ROOT, 'bin', 'registry.js'), 'migrate', ...args], { timeoutMs: 120_000 });
}

function sharedRecords(lockbPath: string): IndexRecord[] {
  const index = PackageIndex.open(lockbPath);
  try {
    return index.readAll().filter((record) => record.kind !== 'cache' && record.kind !== 'self-reference');
  } finally {
    index.close();
  }
}

/** name → {file → bytes} and name → packument, of a storage folder. */
function snapshot(storageDir: string): Map<string, { packument: Record<string, unknown>; tarballs: Map<string, Buffer> }> {
  const result = new Map<string, { packument: Record<string, unknown>; tarballs: Map<string, Buffer> }>();
  const visit = (dir: string, name: string): void => {
    const files = readdirSync(dir);
    if (!files.includes('package.json')) return;
    const tarballs = new Map<string, Buffer>();
    for (const file of files.filter((f) => f.endsWith('.tgz')).sort()) tarballs.set(file, readFileSync(join(dir, file)));
    result.set(name, { packument: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>, tarballs });
  };
  for (const entry of readdirSync(storageDir)) {
    if (entry.startsWith('.')) continue;
    if (entry.startsWith('@')) for (const inner of readdirSync(join(storageDir, entry))) visit(join(storageDir, entry, inner), `${entry}/${inner}`);
    else visit(join(storageDir, entry), entry);
  }
  return result;
}

test('14.5 migrate a file registry with 200 versions to PostgreSQL and back: identical; a non-empty target is refused', async (t) => {
  if (!pg.ok) return t.skip(pg.reason);
  const url = await pg.cluster.createDatabase('pg_migrate');
  // the source: a file registry filled through the real server (20 packages × 10 versions, a beta tag on each)
  const source = await startRegistry();
  running.push(source);
  const token = await addUser(source, 'mover', 'correct-horse-battery');
  const names = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? `@mycompany/moved-${i}` : `moved-${i}`));
  await Promise.all(
    names.map(async (name) => {
      for (let v = 0; v < 10; v += 1) {
        const result = await publishRaw(source.url, token, name, `1.${v}.0`, { tag: v === 9 ? 'beta' : 'latest' });
        assert.equal(result.status, 201, `${name}@1.${v}.0: ${result.text}`);
      }
    }),
  );
  await source.stop();
  const before = snapshot(source.storageDir);
  assert.equal([...before.values()].reduce((sum, entry) => sum + Object.keys(entry.packument.versions as object).length, 0), 200);

  const up = await migrate(['to-postgres', '--config', source.configPath, '--database-url', url]);
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stderr, /migrate: copied 20\/20 packages/);
  assert.match(up.stdout, /20 packages, 200 versions, 200 tarballs .* verified/);
  const again = await migrate(['to-postgres', '--config', source.configPath, '--database-url', url]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /refused: the database .* is not empty \(20 packuments, 200 tarballs/);

  // a node on the migrated database serves what the folder held
  const served = await startRegistry({ env: { REGISTRY_DATABASE_URL: url } });
  running.push(served);
  for (const name of [names[0], names[7]]) {
    const { status, json } = await getJson(`${served.url}/${name.replace('/', '%2f')}`);
    assert.equal(status, 200);
    assert.deepEqual(json['dist-tags'], before.get(name)?.packument['dist-tags']);
    const tgz = await getBytes(tarballUrl(served.url, name, '1.4.0'));
    assert.ok(tgz.bytes.equals(before.get(name)?.tarballs.get(`${name.split('/').pop()}-1.4.0.tgz`) as Buffer));
  }
  await served.stop();

  // and back, into a fresh folder
  const backDir = mkdtempSync(join(tmpdir(), 'registry-migrated-'));
  copyFileSync(source.configPath, join(backDir, 'config.yaml'));
  const down = await migrate(['to-files', '--config', join(backDir, 'config.yaml'), '--database-url', url]);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stdout, /20 packages, 200 versions, 200 tarballs .* verified/);
  const after = snapshot(join(backDir, 'storage'));
  assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort());
  for (const [name, original] of before) {
    const copy = after.get(name);
    assert.ok(copy);
    assert.deepEqual(copy.packument, original.packument, `${name}: packument differs`);
    assert.deepEqual([...copy.tarballs.keys()], [...original.tarballs.keys()]);
    for (const [file, bytes] of original.tarballs) assert.ok(copy.tarballs.get(file)?.equals(bytes), `${name}/${file} differs`);
  }
  assert.deepEqual(sharedRecords(join(backDir, 'registry.lockb')), sharedRecords(source.lockbPath));
  const refused = await migrate(['to-files', '--config', join(backDir, 'config.yaml'), '--database-url', url]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /refused: the storage folder .* already holds 20 package\(s\)/);
});
