/**
 * 14.0 the PostgreSQL harness and the core database part: a private cluster in a temp folder
 * (initdb, free port, socket in the folder), stop / restart / kill, and the versioned migrations
 * under their advisory lock (several nodes starting at once apply each version exactly once).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client } from 'pg';
import { Database, databaseSettingsOf, knownMigrations, migrate, type Migration } from '../../plugins/registry-core/database/index';
import { usePostgres } from '../harness/postgres';

const postgres = usePostgres();

async function scalar(url: string, sql: string): Promise<unknown> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return Object.values((await client.query(sql)).rows[0] ?? {})[0];
  } finally {
    await client.end();
  }
}

test('14.0a harness: a private cluster on 127.0.0.1, its socket in the temp folder; kill -9 and restart keep committed rows', async (t) => {
  const pg = postgres();
  if (!pg.ok) return t.skip(pg.reason);
  const { cluster } = pg;
  assert.match(cluster.url, /^postgres:\/\/registry@127\.0\.0\.1:\d+\/registry$/);
  assert.equal(await scalar(cluster.url, "SELECT current_setting('unix_socket_directories')"), cluster.dir);
  const url = await cluster.createDatabase('harness_kill');
  const client = new Client({ connectionString: url });
  await client.connect();
  await client.query('CREATE TABLE t (n integer)');
  await client.query('INSERT INTO t VALUES (1), (2), (3)');
  await client.end();
  await cluster.kill();
  await assert.rejects(scalar(url, 'SELECT 1'));
  await cluster.restart();
  assert.equal(await scalar(url, 'SELECT count(*)::int FROM t'), 3);
  await cluster.stop();
  await cluster.restart();
  assert.equal(await scalar(url, 'SELECT sum(n)::int FROM t'), 6);
});

test('14.0b migrations: four nodes starting at once apply every version once, in order; an unknown newer version is refused', async (t) => {
  const pg = postgres();
  if (!pg.ok) return t.skip(pg.reason);
  const url = await pg.cluster.createDatabase('harness_migrate');
  const known = knownMigrations();
  assert.ok(known.length >= 1 && known[0].version === 1);
  const nodes = [0, 1, 2, 3].map(() => new Database(url));
  try {
    const reports = await Promise.all(nodes.map((node) => node.ready()));
    const applied = reports.flatMap((report) => report.applied.map((item) => item.version));
    assert.deepEqual(applied, known.map((m) => m.version), 'each version applied by exactly one node');
    for (const report of reports) assert.equal(report.current, known[known.length - 1].version);
    const rows = await nodes[0].query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
    assert.deepEqual(rows.map((row) => row.version), known.map((m) => m.version));
    // a failing migration leaves nothing of itself (its transaction and its schema_migrations row)
    const failing: Migration = { version: 9998, name: 'fails halfway', up: 'CREATE TABLE half (n integer); SELECT 1/0;' };
    await assert.rejects(migrate(nodes[0].pool, [...known, failing]), /9998.*division by zero/);
    assert.equal(await scalar(url, "SELECT to_regclass('half') IS NULL"), true);
    const extra: Migration = { version: 9999, name: 'from a newer build', up: 'SELECT 1' };
    await migrate(nodes[0].pool, [...known, extra]);
    await assert.rejects(migrate(nodes[1].pool, known), /schema version\(s\) 9999 that this registry does not know/);
  } finally {
    await Promise.all(nodes.map((node) => node.close()));
  }
});

test('14.0c backend choice: REGISTRY_DATABASE_URL, else config.yaml store.registry-storage, else files; bad choices are refused', () => {
  const config = { store: { 'registry-storage': { backend: 'postgres', database_url: 'postgres://u:secret@db.internal:5432/reg' } } };
  assert.deepEqual(databaseSettingsOf({}, {}), { backend: 'files' });
  assert.deepEqual(databaseSettingsOf(config, {}), { backend: 'postgres', url: 'postgres://u:secret@db.internal:5432/reg', source: 'config' });
  assert.deepEqual(databaseSettingsOf(config, { REGISTRY_DATABASE_URL: 'postgresql://other/x' }), { backend: 'postgres', url: 'postgresql://other/x', source: 'env' });
  assert.throws(() => databaseSettingsOf({ store: { 'registry-storage': { backend: 'postgres' } } }, {}), /no database_url/);
  assert.throws(() => databaseSettingsOf({ store: { 'registry-storage': { backend: 'mysql' } } }, {}), /expected files or postgres/);
  assert.throws(() => databaseSettingsOf({}, { REGISTRY_DATABASE_URL: 'mysql://x/y' }), /scheme "mysql"/);
  assert.throws(() => databaseSettingsOf({ store: { 'registry-storage': { database_url: 'postgres://h/d' } } }, {}), /backend is files/);
});
