import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { FileSystemStore } from '../../plugins/verdaccio-registry-storage/fs-store';
import { ensureDir, sweepTempFiles } from '../../plugins/verdaccio-registry-storage/atomic';
import { StorageError } from '../../plugins/verdaccio-registry-storage/errors';
import { parsePackageName } from '../../plugins/verdaccio-registry-storage/names';
import { PackageService, type IndexSink } from '../../plugins/verdaccio-registry-storage/package-service';
import type { Manifest, TarballWriter } from '../../plugins/verdaccio-registry-storage/store';
import type { IndexRecord } from '../../plugins/registry-core/index';

const root = mkdtempSync(join(tmpdir(), 'storage-fs-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshStore = (): FileSystemStore => new FileSystemStore(join(root, `s${++counter}`));

async function upload(writer: TarballWriter, bytes: Buffer): Promise<void> {
  writer.stream.end(bytes);
  await finished(writer.stream);
}

function listAll(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' });
}

test('tarball: two concurrent commits of one file → exactly one wins, its bytes are stored, no temp left', async () => {
  const store = freshStore();
  const pkg = parsePackageName('@scope/lib');
  for (let round = 0; round < 10; round += 1) {
    const file = `lib-1.0.${round}.tgz`;
    const a = store.createTarball(pkg, file);
    const b = store.createTarball(pkg, file);
    await Promise.all([upload(a, Buffer.from(`A${round}`)), upload(b, Buffer.from(`B${round}-longer`))]);
    const outcomes = await Promise.allSettled([a.commit(), b.commit()]);
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    const lost = outcomes.filter((o) => o.status === 'rejected');
    assert.equal(won.length, 1);
    assert.equal(lost.length, 1);
    assert.ok((lost[0] as PromiseRejectedResult).reason instanceof StorageError);
    assert.equal(((lost[0] as PromiseRejectedResult).reason as StorageError).code, 'ERR_EXISTS');
    const winner = outcomes[0].status === 'fulfilled' ? `A${round}` : `B${round}-longer`;
    const stored = readFileSync(join(store.root, '@scope', 'lib', file), 'utf8');
    assert.equal(stored, winner);
    const digest = (won[0] as PromiseFulfilledResult<{ sha512: string }>).value;
    assert.equal(digest.sha512, createHash('sha512').update(winner).digest('hex'));
  }
  assert.deepEqual(listAll(store.root).filter((f) => f.includes('.tmp-')), []);
});

test('tarball: an existing file is refused before the body is read; abort leaves nothing', async () => {
  const store = freshStore();
  const pkg = parsePackageName('lib');
  const first = store.createTarball(pkg, 'lib-1.0.0.tgz');
  await upload(first, Buffer.from('one'));
  await first.commit();
  const again = store.createTarball(pkg, 'lib-1.0.0.tgz');
  const error = await new Promise<unknown>((resolve) => again.stream.once('error', resolve));
  assert.ok(error instanceof StorageError && error.code === 'ERR_EXISTS');
  const aborted = store.createTarball(pkg, 'lib-2.0.0.tgz');
  aborted.stream.write(Buffer.from('partial'));
  await new Promise((resolve) => setTimeout(resolve, 20));
  await aborted.abort();
  assert.deepEqual(readdirSync(join(store.root, 'lib')).sort(), ['lib-1.0.0.tgz']);
  assert.equal((await store.readTarball(pkg, 'lib-2.0.0.tgz')), null);
});

test('packument cache: sees writes by another process (in place, same size, same clock tick, and by rename)', async () => {
  const store = freshStore();
  const pkg = parsePackageName('cached');
  const manifest: Manifest = { name: 'cached', versions: {}, 'dist-tags': { latest: 'aaaa' } };
  await store.writePackument(pkg, manifest);
  const path = join(store.root, 'cached', 'package.json');
  const latest = async (): Promise<string | undefined> => (await store.readPackument(pkg))?.['dist-tags'].latest;
  assert.equal(await latest(), 'aaaa');
  // rewritten in place, same size, back to back: mtimes may be equal (coarse kernel clock)
  for (const next of ['bbbb', 'bbbc', 'bbbd', 'bbbe']) {
    writeFileSync(path, readFileSync(path, 'utf8').replace(/"latest":"[a-z]{4}"/, `"latest":"${next}"`));
    assert.equal(await latest(), next);
  }
  // replaced by rename (new inode), same size
  writeFileSync(`${path}.other`, readFileSync(path, 'utf8').replace('bbbe', 'cccc'));
  renameSync(`${path}.other`, path);
  assert.equal(await latest(), 'cccc');
  // each read is a fresh object: mutating it never changes the next read
  const read = await store.readPackument(pkg);
  read!['dist-tags'].latest = 'mutated';
  assert.equal(await latest(), 'cccc');
  // an old file: reads come from memory and the stamp is stable until the file changes
  const past = new Date(Date.now() - 60_000);
  utimesSync(path, past, past);
  await new Promise((resolve) => setImmediate(resolve)); // another process's change: seen from the next turn (turnStats)
  assert.equal(await latest(), 'cccc');
  const stamp = store.packumentStamp(pkg);
  assert.ok(stamp);
  assert.equal(store.packumentStamp(pkg), stamp);
  assert.equal(await latest(), 'cccc');
  writeFileSync(path, readFileSync(path, 'utf8').replace('cccc', 'dddd'));
  // the hot-path stat is shared within one event-loop turn (fs-store.ts turnStats): another
  // process's write is seen from the next turn on
  await new Promise((resolve) => setImmediate(resolve));
  assert.notEqual(store.packumentStamp(pkg), stamp, 'an in-place rewrite by another process changes the stamp');
  assert.notEqual(store.packumentStamp(pkg), store.packumentStamp(pkg), 'a file inside the racy window never gets a reusable stamp');
  assert.equal(await latest(), 'dddd');
  rmSync(path);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(store.packumentStamp(pkg), null);
  assert.equal(await store.readPackument(pkg), null);
});

test('readPackument keep: false (the start-up reindex) fills no text cache, still uses and drops what is cached', async () => {
  const writer = freshStore();
  const names = ['one', 'two', 'three'];
  const past = new Date(Date.now() - 60_000);
  for (const name of names) {
    await writer.writePackument(parsePackageName(name), { name, versions: {}, 'dist-tags': { latest: `${name}-a` } });
    // settled files (outside the racy window), so a cached text is served from memory
    utimesSync(join(writer.root, name, 'package.json'), past, past);
  }
  // a second store on the same folder: nothing kept or cached in it yet (a restarted process)
  const store = new FileSystemStore(writer.root);
  for (const name of names) assert.equal((await store.readPackument(parsePackageName(name), { keep: false }))?.['dist-tags'].latest, `${name}-a`);
  assert.equal(store.cachedPackumentTexts, 0, 'a one-off scan leaves no texts resident');
  const pkg = parsePackageName('one');
  assert.equal((await store.readPackument(pkg))?.['dist-tags'].latest, 'one-a');
  assert.equal(store.cachedPackumentTexts, 1, 'a request read still fills the cache');
  assert.equal((await store.readPackument(pkg, { keep: false }))?.['dist-tags'].latest, 'one-a');
  assert.equal(store.cachedPackumentTexts, 1, 'a cached text is used as it is');
  // changed on disk: the keep: false read returns the new bytes and the stale entry is gone
  const path = join(writer.root, 'one', 'package.json');
  writeFileSync(path, readFileSync(path, 'utf8').replace('one-a', 'one-bb'));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal((await store.readPackument(pkg, { keep: false }))?.['dist-tags'].latest, 'one-bb');
  assert.equal(store.cachedPackumentTexts, 0);
  assert.equal((await store.readPackument(pkg))?.['dist-tags'].latest, 'one-bb');
});

test('writePackument is compact JSON (what stock Verdaccio parses, without its tab indent) and refuses a foreign name', async () => {
  const store = freshStore();
  const pkg = parsePackageName('@a/b');
  await store.writePackument(pkg, { name: '@a/b', versions: {}, 'dist-tags': {} });
  assert.equal(readFileSync(join(store.root, '@a', 'b', 'package.json'), 'utf8'), JSON.stringify({ name: '@a/b', versions: {}, 'dist-tags': {} }));
  await assert.rejects(store.writePackument(pkg, { name: '@a/c', versions: {}, 'dist-tags': {} }), /does not match/);
});

test('sweepTempFiles removes temps of dead processes only', () => {
  const dir = join(root, 'sweep');
  mkdirSync(join(dir, '@s', 'p'), { recursive: true });
  const dead = join(dir, '@s', 'p', '.tmp-2147483646-abcd-p-1.0.0.tgz');
  const mine = join(dir, '@s', 'p', `.tmp-${process.pid}-abcd-p-1.0.1.tgz`);
  const top = join(dir, '.tmp-2147483646-ef-.verdaccio-db.json');
  for (const file of [dead, mine, top]) writeFileSync(file, 'x');
  const removed = sweepTempFiles(dir);
  assert.deepEqual(removed.sort(), [dead, top].sort());
  assert.ok(existsSync(mine));
});

test('18 .verdaccio-db.json group commit: concurrent changes all land, in order; a failing change fails alone', async () => {
  const store = freshStore();
  const names = Array.from({ length: 20 }, (_, i) => `pkg-${i}`);
  const failing = store.updateDb(() => {
    throw new Error('refused change');
  });
  const added = names.map((name) => store.updateDb((db) => ({ ...db, list: [...db.list, name] })));
  const removed = store.updateDb((db) => ({ ...db, list: db.list.filter((item) => item !== 'pkg-3') }));
  const secret = store.updateDb((db) => ({ ...db, secret: 's3cret' }));
  await assert.rejects(failing, /refused change/);
  await Promise.all([...added, removed, secret]);
  const onDisk = JSON.parse(readFileSync(join(store.root, '.verdaccio-db.json'), 'utf8')) as { list: string[]; secret: string };
  assert.deepEqual(onDisk.list, names.filter((name) => name !== 'pkg-3'), 'every add, then the removal that was asked after them');
  assert.equal(onDisk.secret, 's3cret');
  assert.deepEqual((await store.readDb()).list, onDisk.list);
  // a change that changes nothing is still answered (and the file still says it)
  assert.deepEqual((await store.updateDb((db) => db)).list, onDisk.list);
  assert.deepEqual(listAll(store.root).filter((file) => file.includes('.tmp-')), [], 'no temp file left');
});

test('a corrupt .verdaccio-db.json stops the store from opening (never silently replaced)', () => {
  const dir = join(root, 'corrupt-db');
  mkdirSync(dir);
  writeFileSync(join(dir, '.verdaccio-db.json'), '{"list": [');
  assert.throws(() => new FileSystemStore(dir), (error: unknown) => error instanceof StorageError && error.code === 'ERR_STORAGE_DB');
  assert.equal(readFileSync(join(dir, '.verdaccio-db.json'), 'utf8'), '{"list": [');
});

class CollectingSink implements IndexSink {
  records: IndexRecord[] = [];
  append(records: IndexRecord[]): void {
    this.records.push(...records);
  }
}

const quietLog = { warn: () => undefined, error: (text: string) => assert.fail(text) };

async function publishThroughService(service: PackageService, name: string, version: string, bytes: Buffer, integrity: string): Promise<void> {
  const bare = name.slice(name.lastIndexOf('/') + 1);
  const file = `${bare}-${version}.tgz`;
  try {
    await service.createPackage(name, { name, versions: {}, 'dist-tags': {}, _attachments: {} });
  } catch (error) {
    if (!(error instanceof StorageError && error.code === 'ERR_EXISTS')) throw error;
  }
  const writer = service.uploadTarball(name, file);
  await upload(writer, bytes);
  await writer.commit();
  const save = (m: Manifest) => service.savePackage(name, m);
  await service.updatePackage(name, async (m) => ({ ...m, _attachments: { ...m._attachments, [file]: { shasum: 'x' } } }), save);
  await service.updatePackage(
    name,
    async (m) => {
      m.versions[version] = { name, version, dist: { tarball: `http://r/${name}/-/${file}`, integrity } };
      m['dist-tags'].latest = version;
      return m;
    },
    save,
  );
}

test('service: a tarball that does not match dist.integrity → ERR_INTEGRITY, nothing stored, no record', async () => {
  const store = freshStore();
  const sink = new CollectingSink();
  const service = new PackageService(store, sink, quietLog);
  const bytes = Buffer.from('real tarball bytes');
  const wrong = `sha512-${createHash('sha512').update('something else').digest('base64')}`;
  await assert.rejects(publishThroughService(service, '@s/evil', '1.0.0', bytes, wrong), (e: unknown) => e instanceof StorageError && e.code === 'ERR_INTEGRITY');
  assert.equal(sink.records.length, 0);
  assert.equal(existsSync(join(store.root, '@s', 'evil')), false, `left: ${listAll(store.root).join(', ')}`);
  await assert.rejects(service.readPackage('@s/evil'), (e: unknown) => e instanceof StorageError && e.code === 'ERR_NOT_FOUND');

  // an existing package keeps its versions and loses only the refused one
  const good = `sha512-${createHash('sha512').update(bytes).digest('base64')}`;
  await publishThroughService(service, '@s/ok', '1.0.0', bytes, good);
  const before = readFileSync(join(store.root, '@s', 'ok', 'package.json'), 'utf8');
  await assert.rejects(publishThroughService(service, '@s/ok', '1.0.1', Buffer.from('tampered'), good), /integrity/);
  const manifest = await service.readPackage('@s/ok');
  assert.deepEqual(Object.keys(manifest.versions), ['1.0.0']);
  assert.deepEqual(Object.keys(manifest._attachments ?? {}), ['ok-1.0.0.tgz']);
  assert.equal(existsSync(join(store.root, '@s', 'ok', 'ok-1.0.1.tgz')), false);
  assert.ok(before.includes('"1.0.0"'));
  assert.deepEqual(
    sink.records.map((r) => `${r.kind} ${r.name}@${r.version} ${r.detail}`),
    ['publish @s/ok@1.0.0 ', 'dist-tag @s/ok@1.0.0 latest'],
  );
  assert.equal(sink.records[0].sha512, createHash('sha512').update(bytes).digest('hex'));
});

test('service: no package.json exists before the first version is added (tarball first, then metadata)', async () => {
  const store = freshStore();
  const service = new PackageService(store, new CollectingSink(), quietLog);
  await service.createPackage('fresh', { name: 'fresh', versions: {}, 'dist-tags': {}, _attachments: {} });
  assert.equal(existsSync(join(store.root, 'fresh', 'package.json')), false);
  await assert.rejects(service.createPackage('fresh', { name: 'fresh', versions: {}, 'dist-tags': {} }), /already exists/);
  await assert.rejects(service.readPackage('fresh'), /not found/);
});

test('ensureDir says "made it" only when its own mkdir made the folder itself (the tarball probe is skipped only then)', async () => {
  const base = join(root, 'ensure-dir');
  mkdirSync(base, { recursive: true });
  assert.equal(await ensureDir(base, join(base, 'pkg')), true, 'a new folder under an existing parent');
  assert.equal(await ensureDir(base, join(base, 'pkg')), false, 'an existing folder');
  // a new scope: the first folder made is the scope, not the package folder, so it is not proven empty
  assert.equal(await ensureDir(base, join(base, '@scope', 'pkg')), false);
  assert.ok(existsSync(join(base, '@scope', 'pkg')));
  // the refusal of a tarball already there is pinned by 'tarball: an existing file is refused before the body is read'
});

test('peekTarball: held bytes proven once per event-loop turn; another process\'s same-size rewrite is seen from the next turn, never served after it', async () => {
  const store = freshStore();
  const pkg = parsePackageName('held');
  const dir = join(store.root, 'held');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'held-1.0.0.tgz');
  const past = new Date(Date.now() - 60_000);
  writeFileSync(file, 'aaaa');
  utimesSync(file, past, past); // settled: outside the racy window, so the bytes may be held
  const first = await store.readTarball(pkg, 'held-1.0.0.tgz');
  assert.ok(first && 'bytes' in first);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(store.peekTarball(pkg, 'held-1.0.0.tgz')?.toString(), 'aaaa');
  assert.equal(store.peekTarball(pkg, 'held-1.0.0.tgz')?.toString(), 'aaaa', 'the same turn: the same proven answer');
  // rewritten in place by another process: same size, an mtime as old (only the stat identity differs)
  writeFileSync(file, 'bbbb');
  const older = new Date(Date.now() - 120_000);
  utimesSync(file, older, older);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(store.peekTarball(pkg, 'held-1.0.0.tgz'), undefined, 'the next turn stats again and the held bytes no longer match');
  const again = await store.readTarball(pkg, 'held-1.0.0.tgz');
  assert.ok(again && 'bytes' in again);
  assert.equal(again.bytes.toString(), 'bbbb');
});
