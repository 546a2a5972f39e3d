/**
 * 14.7 the package-change seam (core database/package-changes.ts) the cross-node transport
 * plugs into, on two PgPackageStores ("nodes") over one real database: every commit is announced
 * once per changed package, after COMMIT; with a transport attached a node trusts its packument
 * cache until a change is delivered; without one it always reads the database.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Database, packageChanges, type PackageChange } from '../../plugins/registry-core/database/index';
import { parsePackageName } from '../../plugins/verdaccio-registry-storage/names';
import { PgPackageStore } from '../../plugins/verdaccio-registry-storage/pg-store';
import type { Manifest } from '../../plugins/verdaccio-registry-storage/store';
import { tryStartPostgres, type PostgresStart } from '../harness/postgres';

let pg: PostgresStart;
before(async () => {
  pg = await tryStartPostgres();
});
after(async () => {
  if (pg.ok) await pg.cluster.destroy();
});

function manifest(description: string): Manifest {
  return { name: '@mycompany/seam', description, versions: {}, 'dist-tags': {} };
}

test('14.7 package changes: announced after COMMIT once per package; a node with a transport serves its cache until a delivery, one without always reads the database', async (t) => {
  if (!pg.ok) return t.skip(pg.reason);
  const url = await pg.cluster.createDatabase('pg_seam');
  const dir = mkdtempSync(join(tmpdir(), 'registry-seam-'));
  const busA = packageChanges(join(dir, 'a', 'registry.lockb'));
  const busB = packageChanges(join(dir, 'b', 'registry.lockb'));
  const databases = [new Database(url), new Database(url)];
  try {
    const a = new PgPackageStore(databases[0], { changes: busA });
    const b = new PgPackageStore(databases[1], { changes: busB });
    const pkg = parsePackageName('@mycompany/seam');
    const announced: PackageChange[] = [];
    busA.onCommitted((change) => announced.push(change));

    // a rolled-back section announces nothing
    await assert.rejects(
      a.withLock(pkg.name, async () => {
        await a.writePackument(pkg, manifest('never'));
        throw new Error('refused');
      }),
      /refused/,
    );
    assert.equal(announced.length, 0);
    assert.equal(await b.readPackument(pkg), null);

    await a.withLock(pkg.name, async () => {
      await a.writePackument(pkg, manifest('one'));
      await a.writePackument(pkg, manifest('two')); // two writes, one transaction: one announcement
    });
    assert.equal(announced.length, 1);
    assert.equal(announced[0].name, pkg.name);
    assert.match(String(announced[0].revision), /^\d+$/);

    // B without a transport: always the database's current row, stamps never reused
    assert.equal((await b.readPackument(pkg))?.description, 'two');
    assert.notEqual(b.packumentStamp(pkg), b.packumentStamp(pkg));

    // B with a transport: its cache is trusted until a change is delivered
    const detach = busB.attachTransport();
    assert.equal((await b.readPackument(pkg))?.description, 'two');
    const stamp = b.packumentStamp(pkg);
    assert.equal(stamp, b.packumentStamp(pkg));
    await a.writePackument(pkg, manifest('three'));
    assert.equal((await b.readPackument(pkg))?.description, 'two', 'no delivery yet: the cached row');
    busB.deliver(announced[announced.length - 1]);
    assert.equal((await b.readPackument(pkg))?.description, 'three');
    assert.notEqual(b.packumentStamp(pkg), stamp);
    detach();
    assert.equal(busB.transportAttached(), false);
    assert.equal(announced.length, 2);
  } finally {
    await Promise.all(databases.map((database) => database.close()));
  }
});
