/**
 * Reads served from the document the store wrote itself (fs-store.ts `readPackument` from a kept
 * document, json-copy.ts): exactly what a parse of the file gives, a fresh object per read, and
 * never the kept document once the file holds anything else.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSystemStore, RACY_WINDOW_MS } from '../../plugins/verdaccio-registry-storage/fs-store';
import { jsonCopy } from '../../plugins/verdaccio-registry-storage/json-copy';
import fc from 'fast-check';
import { parsePackageName } from '../../plugins/verdaccio-registry-storage/names';
import type { Manifest } from '../../plugins/verdaccio-registry-storage/store';

const root = mkdtempSync(join(tmpdir(), 'storage-kept-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** What JSON makes of a value, for comparison (own `__proto__` keys compared as keys). */
function viaJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

test('property: jsonCopy of any value reads as JSON.parse(JSON.stringify(value)), same text and key order', () => {
  // fc.anything: nested objects and arrays of every primitive (undefined, -0, NaN), boxed values, dates, sparse arrays, null prototypes, odd keys
  fc.assert(
    fc.property(fc.anything({ withNullPrototype: true, withSparseArray: true, withBoxedValues: true, withDate: true, maxDepth: 4 }), (value) => {
      const text = JSON.stringify(value);
      const copied = jsonCopy(value);
      if (text === undefined) {
        assert.equal(copied, undefined);
        return;
      }
      assert.deepStrictEqual(copied, JSON.parse(text));
      assert.equal(JSON.stringify(copied), text);
    }),
    { numRuns: 2_000 },
  );
});

test('jsonCopy reads a value exactly as JSON.parse(JSON.stringify(value)) does', () => {
  class Point {
    x = 1;
    y = 2;
  }
  const withToJson = { toJSON: () => ({ replaced: true }) };
  const sparse: unknown[] = [1];
  sparse[3] = 4;
  const source: Record<string, unknown> = {
    string: 'a\u{1F600}\uD800 lone surrogate',
    number: 1.5,
    negativeZero: -0,
    notFinite: [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY],
    bool: false,
    nil: null,
    gone: undefined,
    fn: () => 1,
    sym: Symbol('s'),
    list: [undefined, () => 1, Symbol('t'), { deep: [1, { deeper: 'x' }] }],
    sparse,
    date: new Date(Date.UTC(2026, 11, 2, 19, 0, 0)),
    instance: new Point(),
    withToJson,
    toJsonUndefined: { toJSON: () => undefined },
    nullProto: Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 }),
    '10': 'integer-like key',
    '2': 'another',
  };
  Object.defineProperty(source, '__proto__', { value: { polluted: true }, enumerable: true, configurable: true, writable: true });
  const copied = jsonCopy(source);
  assert.deepStrictEqual(copied, viaJson(source));
  assert.equal(JSON.stringify(copied), JSON.stringify(source), 'same text, same key order');
  assert.equal(Object.getPrototypeOf(copied), Object.prototype, 'an own __proto__ key does not become the prototype');
  assert.ok(Object.hasOwn(copied as object, '__proto__'));
  assert.ok(Object.is((copied as { negativeZero: number }).negativeZero, 0));
  assert.throws(() => jsonCopy({ big: 1n }), TypeError, 'a BigInt is refused as JSON refuses it');
  // a fresh tree: nothing shared with the source
  const nested = { a: { b: [{ c: 1 }] } };
  const copy = jsonCopy(nested);
  copy.a.b[0].c = 2;
  assert.equal(nested.a.b[0].c, 1);
});

function manifest(versions: string[]): Manifest {
  const doc: Manifest = { name: 'kept-pkg', versions: {}, 'dist-tags': { latest: versions[versions.length - 1] }, time: {}, _attachments: {} };
  for (const version of versions) {
    doc.versions[version] = { name: 'kept-pkg', version, dist: { tarball: `http://localhost/kept-pkg/-/kept-pkg-${version}.tgz`, shasum: 'a'.repeat(40) } };
  }
  return doc;
}

test('readPackument after a kept write: what the file says, a fresh object each time, the kept document untouched', async () => {
  const store = new FileSystemStore(join(root, `s${++counter}`));
  const pkg = parsePackageName('kept-pkg', 'read');
  await store.writePackument(pkg, manifest(['1.0.0', '1.0.1']), { keep: true });
  const path = join(store.root, 'kept-pkg', 'package.json');
  const first = await store.readPackument(pkg);
  assert.deepStrictEqual(first, JSON.parse(readFileSync(path, 'utf8')));
  assert.ok(first);
  first.versions['1.0.1'].deprecated = 'changed by a reader';
  first['dist-tags'].latest = '1.0.0';
  const second = await store.readPackument(pkg);
  assert.notEqual(second, first);
  assert.equal(second?.versions['1.0.1'].deprecated, undefined, "a reader's change never reaches the next read");
  assert.equal(second?.['dist-tags'].latest, '1.0.1');
  assert.equal(store.peekPackument(pkg)?.['dist-tags'].latest, '1.0.1', 'nor the kept document');
  // the next update still starts from the kept document, unchanged
  const forUpdate = await store.readPackumentForUpdate(pkg);
  assert.equal(forUpdate?.versions['1.0.1'].deprecated, undefined);
});

test('a kept document is never served once the file holds other bytes, even with the same size and stamp', async () => {
  // the case only exists inside the racy window (a stamp older than RACY_WINDOW_MS is trusted by
  // design): a scenario that took longer than that on a slow box is tried again with a fresh store
  let checked = false;
  for (let attempt = 0; attempt < 5 && !checked; attempt += 1) {
    const store = new FileSystemStore(join(root, `s${++counter}`));
    const pkg = parsePackageName('kept-pkg', 'read');
    await store.writePackument(pkg, manifest(['1.0.0', '1.0.1']), { keep: true });
    const path = join(store.root, 'kept-pkg', 'package.json');
    assert.equal((await store.readPackument(pkg))?.['dist-tags'].latest, '1.0.1');
    // another process edits the file in place: same inode, same size, and the mtime put back, so
    // (ino, size, mtime) still match what the store wrote
    const before = statSync(path, { bigint: true });
    const original = readFileSync(path, 'utf8');
    // whatever the layout (compact or indented), only the tag's value changes
    const edited = original.replace(/("latest":\s*)"1\.0\.1"/, '$1"1.0.0"');
    assert.notEqual(edited, original, 'the edit changes the file');
    assert.equal(Buffer.byteLength(edited), Number(before.size));
    writeFileSync(path, edited);
    // the exact nanoseconds back (utimes through Node takes a double: GNU touch sets them as given)
    const ns = before.mtimeNs % 1_000_000_000n;
    execFileSync('touch', ['-m', '-d', `@${before.mtimeNs / 1_000_000_000n}.${ns.toString().padStart(9, '0')}`, path]);
    const edit = statSync(path, { bigint: true });
    assert.equal(edit.ino, before.ino);
    assert.equal(edit.mtimeNs, before.mtimeNs, 'the stamp is what the store wrote');
    // a proof of this turn stands for this turn's reads (like the shared stat, turnStats); the
    // edit is seen from the next turn on
    await nextTurn();
    if (Date.now() - Number(before.mtimeNs / 1_000_000n) > RACY_WINDOW_MS - 20) continue;
    assert.equal((await store.readPackument(pkg))?.['dist-tags'].latest, '1.0.0', 'the bytes are compared, not only the stamp');
    assert.equal(store.peekPackument(pkg), undefined, 'the kept document is dropped');
    checked = true;
  }
  assert.ok(checked, `no attempt stayed inside the ${RACY_WINDOW_MS} ms racy window`);
});

test('inside the racy window the stamp of the store\'s own write is reusable, until another writer edits the file in place (same size and stamp)', async () => {
  // as above: only inside the racy window; a slow attempt is tried again with a fresh store
  let checked = false;
  for (let attempt = 0; attempt < 5 && !checked; attempt += 1) {
    const store = new FileSystemStore(join(root, `s${++counter}`), { recordOwnWrites: true }); // as the upstream cache is made
    const pkg = parsePackageName('kept-pkg', 'read');
    await store.writePackument(pkg, manifest(['1.0.0', '1.0.1'])); // no keep: a cache fill's write
    const path = join(store.root, 'kept-pkg', 'package.json');
    const before = statSync(path, { bigint: true });
    const plain = `${before.ino}:${before.size}:${before.mtimeNs}`;
    // the local storage (no recordOwnWrites) vouches for nothing inside the window
    const local = new FileSystemStore(join(root, `s${++counter}`));
    await local.writePackument(pkg, manifest(['1.0.0']));
    const localInfo = statSync(join(local.root, 'kept-pkg', 'package.json'), { bigint: true });
    if (Date.now() - Number(localInfo.mtimeNs / 1_000_000n) < RACY_WINDOW_MS - 20) {
      assert.equal(local.writtenStamp(pkg), null, 'the local store keeps no record of its writes');
      assert.match(local.packumentStamp(pkg) ?? '', /:racy-/, 'inside the window a local stamp never repeats');
    }
    assert.equal(store.writtenStamp(pkg), plain, 'the store vouches for its own write');
    assert.equal(store.packumentStamp(pkg), plain, 'a reusable stamp inside the racy window');
    await nextTurn();
    assert.equal(store.packumentStamp(pkg), plain, 'proven again in the next turn');
    // another process edits the file in place, the (ino, size, mtime) put back
    const original = readFileSync(path, 'utf8');
    const edited = original.replace(/("latest":\s*)"1\.0\.1"/, '$1"1.0.0"');
    assert.notEqual(edited, original, 'the edit changes the file');
    writeFileSync(path, edited);
    const ns = before.mtimeNs % 1_000_000_000n;
    execFileSync('touch', ['-m', '-d', `@${before.mtimeNs / 1_000_000_000n}.${ns.toString().padStart(9, '0')}`, path]);
    assert.equal(statSync(path, { bigint: true }).mtimeNs, before.mtimeNs, 'the stamp is what the store wrote');
    await nextTurn();
    if (Date.now() - Number(before.mtimeNs / 1_000_000n) > RACY_WINDOW_MS - 20) continue;
    const stamp = store.packumentStamp(pkg);
    assert.notEqual(stamp, plain, 'the bytes are compared, not only the stamp');
    assert.notEqual(store.packumentStamp(pkg), stamp, 'a stamp that never repeats: nothing reuses it');
    assert.equal(store.writtenStamp(pkg), null, 'no longer the store\'s own write');
    assert.equal((await store.readPackument(pkg))?.['dist-tags'].latest, '1.0.0');
    checked = true;
  }
  assert.ok(checked, `no attempt stayed inside the ${RACY_WINDOW_MS} ms racy window`);
});

test("a write of this store is seen by the reads of the same turn (no proof outlives the store's own write)", async () => {
  const store = new FileSystemStore(join(root, `s${++counter}`));
  const pkg = parsePackageName('kept-pkg', 'read');
  await store.writePackument(pkg, manifest(['1.0.0']), { keep: true });
  assert.equal((await store.readPackument(pkg))?.['dist-tags'].latest, '1.0.0');
  assert.equal(store.peekPackument(pkg)?.['dist-tags'].latest, '1.0.0');
  await store.writePackument(pkg, manifest(['1.0.0', '1.0.1']), { keep: true });
  assert.equal((await store.readPackument(pkg))?.['dist-tags'].latest, '1.0.1');
  assert.equal(store.peekPackument(pkg)?.['dist-tags'].latest, '1.0.1');
  await store.writePackument(pkg, manifest(['1.0.0', '1.0.1', '1.0.2']));
  assert.equal(store.peekPackument(pkg), undefined, 'a write without keep leaves nothing kept');
  assert.equal((await store.readPackument(pkg))?.['dist-tags'].latest, '1.0.2');
});
