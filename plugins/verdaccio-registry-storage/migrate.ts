/**
 * `registry migrate` (docs/database.md "Migrating"): a file registry into PostgreSQL and back,
 * verified, Verdaccio-free (the two stores of this plugin, nothing else).
 *
 * - files → PostgreSQL: every packument, every tarball file of every package folder, the package
 *   list and secret, and the index records of registry.lockb (node-local `cache` / `self-reference`
 *   records stay behind) go in ONE transaction, verified inside it before COMMIT (counts, and the
 *   sha512 PostgreSQL computes over each stored tarball against the one of its file): a failure or a
 *   kill leaves the database as it was, so the command can simply be run again.
 * - PostgreSQL → files: into a storage folder without packages; each file written atomically
 *   (the file store's own writes), the index records replace registry.lockb's (its header stays;
 *   created with defaults when missing); then every written tarball is read back and hashed.
 * - A target that already holds packages is refused with what it holds: never merged, never overwritten.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { PoolClient } from 'pg';
import type { Database } from '../registry-core/database/index';
import { PackageIndex, createConfigFile, defaultFields, encodeRecord, decodeRecordAt, replaceIndexRecords, type IndexRecord } from '../registry-core/index';
import { FileSystemStore } from './fs-store';
import { packageDirOf, parsePackageName, parseTarballName, type ParsedName } from './names';
import { scanPackagesSync } from './scan';
import { packumentText, type Manifest } from './store';

/** Record kinds that belong to one node (docs/database.md): not part of the shared index. */
const NODE_LOCAL_KINDS = new Set<IndexRecord['kind']>(['cache', 'self-reference']);

export interface MigrationProgress {
  (line: string): void;
}

export interface MigrationSummary {
  packages: number;
  versions: number;
  tarballs: number;
  bytes: number;
  indexRecords: number;
}

export class MigrationRefused extends Error {}

function sha512Hex(bytes: Buffer): string {
  return createHash('sha512').update(bytes).digest('hex');
}

function sha1Hex(bytes: Buffer): string {
  return createHash('sha1').update(bytes).digest('hex');
}

function tarballFilesOf(storageDir: string, pkg: ParsedName): string[] {
  const dir = packageDirOf(storageDir, pkg);
  return readdirSync(dir)
    .filter((file) => {
      if (!file.endsWith('.tgz') || file.startsWith('.')) return false;
      try {
        parseTarballName(pkg, file);
        return statSync(join(dir, file)).isFile();
      } catch {
        return false;
      }
    })
    .sort();
}

function versionsOf(manifest: Manifest): number {
  return manifest.versions !== null && typeof manifest.versions === 'object' ? Object.keys(manifest.versions).length : 0;
}

function reporter(progress: MigrationProgress, total: number, verb: string): (done: number, name: string) => void {
  let last = 0;
  return (done, name) => {
    // a line per package up to 50, then every 2 % (and the last): readable for 10 or 10,000 packages
    const step = total <= 50 ? 1 : Math.max(1, Math.floor(total / 50));
    if (done === total || done - last >= step) {
      last = done;
      progress(`migrate: ${verb} ${done}/${total} packages (${name})`);
    }
  };
}

async function targetHolds(client: PoolClient): Promise<{ packuments: number; tarballs: number; records: number; names: number }> {
  const row = (await client.query<{ packuments: number; tarballs: number; records: number; names: number }>(
    'SELECT (SELECT count(*) FROM packuments)::int AS packuments, (SELECT count(*) FROM tarballs)::int AS tarballs, (SELECT count(*) FROM package_index)::int AS records, (SELECT count(*) FROM package_list)::int AS names',
  )).rows[0];
  return row;
}

/** files → PostgreSQL, one verified transaction. */
export async function migrateFilesToPostgres(
  source: { storageDir: string; lockbPath: string },
  database: Database,
  progress: MigrationProgress,
): Promise<MigrationSummary> {
  if (!existsSync(source.storageDir) || !statSync(source.storageDir).isDirectory()) {
    throw new MigrationRefused(`the storage folder ${source.storageDir} does not exist: nothing to migrate (check storage: in config.yaml)`);
  }
  const store = new FileSystemStore(source.storageDir);
  const names = scanPackagesSync(source.storageDir).filter((name) => {
    try {
      parsePackageName(name, 'read');
      return true;
    } catch {
      progress(`migrate: skipped folder ${name}: not a package name`);
      return false;
    }
  });
  const db = await store.readDb();
  let records: IndexRecord[] = [];
  if (existsSync(source.lockbPath)) {
    const index = PackageIndex.open(source.lockbPath);
    try {
      records = index.readAll().filter((record) => !NODE_LOCAL_KINDS.has(record.kind));
    } finally {
      index.close();
    }
  }
  const report = reporter(progress, names.length, 'copied');
  const expected = new Map<string, string>(); // package\0file → sha512
  const summary: MigrationSummary = { packages: 0, versions: 0, tarballs: 0, bytes: 0, indexRecords: records.length };
  progress(`migrate: ${source.storageDir} → ${database.location}: ${names.length} packages, ${records.length} index records`);

  await database.transaction(async (client) => {
    const held = await targetHolds(client);
    if (held.packuments + held.tarballs + held.records + held.names > 0) {
      throw new MigrationRefused(
        `the database ${database.location} is not empty (${held.packuments} packuments, ${held.tarballs} tarballs, ${held.records} index records, ${held.names} listed names): ` +
          'migrate never merges into or overwrites a registry — point it at an empty database',
      );
    }
    for (const [i, name] of names.entries()) {
      const pkg = parsePackageName(name, 'read');
      const manifest = await store.readPackument(pkg);
      if (manifest === null) continue;
      await client.query({ name: 'm-packument', text: 'INSERT INTO packuments (name, body) VALUES ($1, $2)', values: [pkg.name, packumentText(manifest)] });
      summary.packages += 1;
      summary.versions += versionsOf(manifest);
      for (const file of tarballFilesOf(source.storageDir, pkg)) {
        const bytes = readFileSync(join(packageDirOf(source.storageDir, pkg), file));
        const sha512 = sha512Hex(bytes);
        await client.query({
          name: 'm-tarball',
          text: 'INSERT INTO tarballs (package, file, bytes, size, sha512, sha1) VALUES ($1, $2, $3, $4, $5, $6)',
          values: [pkg.name, file, bytes, bytes.length, sha512, sha1Hex(bytes)],
        });
        expected.set(`${pkg.name}\u0000${file}`, sha512);
        summary.tarballs += 1;
        summary.bytes += bytes.length;
      }
      report(i + 1, name);
    }
    if (db.list.length > 0) await client.query('INSERT INTO package_list (name) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING', [db.list]);
    if (db.secret !== '') await client.query("INSERT INTO storage_settings (key, value) VALUES ('secret', $1)", [db.secret]);
    for (let at = 0; at < records.length; at += 1000) {
      const batch = records.slice(at, at + 1000);
      await client.query('INSERT INTO package_index (name, record) SELECT * FROM unnest($1::text[], $2::bytea[])', [batch.map((r) => r.name), batch.map(encodeRecord)]);
    }

    // verified before COMMIT: a difference rolls everything back
    progress('migrate: verifying (counts, sha512 of every tarball as stored)…');
    const stored = await client.query<{ package: string; file: string; sha512: string }>("SELECT package, file, encode(sha512(bytes), 'hex') AS sha512 FROM tarballs");
    if (stored.rows.length !== expected.size) throw new Error(`verification failed: ${stored.rows.length} tarballs stored, ${expected.size} expected`);
    for (const row of stored.rows) {
      if (expected.get(`${row.package}\u0000${row.file}`) !== row.sha512) throw new Error(`verification failed: ${row.package}/${row.file} differs from its file`);
    }
    const counts = await targetHolds(client);
    if (counts.packuments !== summary.packages || counts.records !== records.length) {
      throw new Error(`verification failed: ${counts.packuments} packuments / ${counts.records} index records stored, ${summary.packages} / ${records.length} expected`);
    }
  });
  return summary;
}

/** One tarball through the file store's own writer (temp file, fsync, link: never replaces one). */
async function writeTarball(store: FileSystemStore, pkg: ParsedName, file: string, bytes: Buffer): Promise<void> {
  const writer = store.createTarball(pkg, file);
  await new Promise<void>((resolveWrite, reject) => {
    writer.stream.once('error', reject);
    writer.stream.end(bytes, () => resolveWrite());
  });
  await writer.commit();
}

/** PostgreSQL → files, into a storage folder without packages; verified by reading back. */
export async function migratePostgresToFiles(
  database: Database,
  target: { storageDir: string; lockbPath: string },
  progress: MigrationProgress,
): Promise<MigrationSummary> {
  if (existsSync(target.storageDir)) {
    const present = scanPackagesSync(target.storageDir);
    if (present.length > 0) {
      throw new MigrationRefused(
        `the storage folder ${target.storageDir} already holds ${present.length} package(s) (${present.slice(0, 3).join(', ')}${present.length > 3 ? ', …' : ''}): ` +
          'migrate never merges into or overwrites a registry — use an empty storage folder',
      );
    }
  }
  const store = new FileSystemStore(target.storageDir);
  const existingDb = await store.readDb();
  if (existingDb.list.length > 0) {
    throw new MigrationRefused(`${target.storageDir}/.verdaccio-db.json already lists ${existingDb.list.length} package(s): use an empty storage folder`);
  }
  await database.ready();
  const packuments = await database.query<{ name: string; body: string }>('SELECT name, body FROM packuments ORDER BY name');
  const files = await database.query<{ package: string; file: string; sha512: string }>('SELECT package, file, sha512 FROM tarballs ORDER BY package, file');
  const rows = await database.query<{ record: Buffer }>('SELECT record FROM package_index ORDER BY package_index.id');
  const records = rows.map((row, i) => {
    const decoded = decodeRecordAt(row.record, 0);
    if (!decoded.ok) throw new Error(`package_index row ${i + 1}: ${decoded.reason}`);
    return decoded.record;
  });
  const list = (await database.query<{ name: string }>('SELECT name FROM package_list ORDER BY name')).map((row) => row.name);
  const secret = (await database.query<{ value: string }>("SELECT value FROM storage_settings WHERE key = 'secret'"))[0]?.value ?? '';
  progress(`migrate: ${database.location} → ${target.storageDir}: ${packuments.length} packages, ${files.length} tarballs, ${records.length} index records`);

  const byPackage = new Map<string, Array<{ file: string; sha512: string }>>();
  for (const row of files) {
    let entry = byPackage.get(row.package);
    if (!entry) byPackage.set(row.package, (entry = []));
    entry.push({ file: row.file, sha512: row.sha512 });
  }
  const summary: MigrationSummary = { packages: 0, versions: 0, tarballs: 0, bytes: 0, indexRecords: records.length };
  const report = reporter(progress, packuments.length, 'written');
  for (const [i, row] of packuments.entries()) {
    const pkg = parsePackageName(row.name, 'read');
    const manifest = JSON.parse(row.body) as Manifest;
    for (const { file, sha512 } of byPackage.get(row.name) ?? []) {
      // one tarball in memory at a time (each is bounded by the publish body limit)
      const bytes = (await database.query<{ bytes: Buffer }>('SELECT bytes FROM tarballs WHERE package = $1 AND file = $2', [row.name, file], 'm-read'))[0].bytes;
      if (sha512Hex(bytes) !== sha512) throw new Error(`${row.name}/${file}: the database's bytes do not match its recorded sha512`);
      await writeTarball(store, pkg, file, bytes);
      summary.tarballs += 1;
      summary.bytes += bytes.length;
    }
    await store.writePackument(pkg, manifest);
    summary.packages += 1;
    summary.versions += versionsOf(manifest);
    report(i + 1, row.name);
  }
  for (const pkg of packuments.map((row) => row.name)) byPackage.delete(pkg);
  for (const [name, orphans] of byPackage) {
    // tarballs of a package without a packument (a package unpublished, its files kept): copied as they are
    const pkg = parsePackageName(name, 'read');
    for (const { file } of orphans) {
      const bytes = (await database.query<{ bytes: Buffer }>('SELECT bytes FROM tarballs WHERE package = $1 AND file = $2', [name, file], 'm-read'))[0].bytes;
      await writeTarball(store, pkg, file, bytes);
      summary.tarballs += 1;
      summary.bytes += bytes.length;
    }
  }
  await store.updateDb((db) => ({ ...db, list, secret }));
  if (!existsSync(target.lockbPath)) createConfigFile(target.lockbPath, defaultFields());
  // the node-local records (cache, self-reference) of the target's registry.lockb stay after the shared ones
  const index = PackageIndex.open(target.lockbPath);
  const local = index.readAll().filter((record) => NODE_LOCAL_KINDS.has(record.kind));
  index.close();
  replaceIndexRecords(target.lockbPath, [...records, ...local]);

  progress('migrate: verifying (counts, sha512 of every tarball as written)…');
  const written = scanPackagesSync(target.storageDir);
  if (written.length !== packuments.length) throw new Error(`verification failed: ${written.length} packages written, ${packuments.length} expected`);
  for (const row of files) {
    const path = join(packageDirOf(target.storageDir, parsePackageName(row.package, 'read')), row.file);
    if (sha512Hex(readFileSync(path)) !== row.sha512) throw new Error(`verification failed: ${path} differs from the database`);
  }
  const check = PackageIndex.open(target.lockbPath);
  const onFile = check.readAll().filter((record) => !NODE_LOCAL_KINDS.has(record.kind));
  check.close();
  if (onFile.length !== records.length) throw new Error(`verification failed: ${onFile.length} index records written, ${records.length} expected`);
  return summary;
}
