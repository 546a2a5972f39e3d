/**
 * `.registry-verified` (plugins/verdaccio-registry-storage/verified.ts): a restart skips reading a
 * package.json only when its file identity and its index entry are both unchanged since the last
 * check, and that still detects a storage changed behind the index's back — an edit that keeps
 * size and mtime, a racy same-tick change, a damaged sidecar, an index that changed.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { IndexedPackage } from '../../plugins/registry-core/index';
import { TEMP_PREFIX, sweepTempFiles } from '../../plugins/verdaccio-registry-storage/atomic';
import { checkAgainstIndex } from '../../plugins/verdaccio-registry-storage/verify';
import {
  FolderListings,
  VERIFIED_FILE,
  decodeVerified,
  encodeVerified,
  identityOf,
  indexDigest,
  readVerified,
  storedPackageFiles,
  withFolders,
  type VerifiedEntry,
  type VerifiedStates,
} from '../../plugins/verdaccio-registry-storage/verified';
import { addUser, createClientDir, startRegistry, writePackage } from '../harness/registry';
import { useOurStorage } from './lib/packages';

const SECOND = 1_000_000_000n;

function packument(name: string, latest: string, versions: string[]): string {
  return `${JSON.stringify({ name, 'dist-tags': { latest }, versions: Object.fromEntries(versions.map((v) => [v, { name, version: v }])) }, null, 2)}\n`;
}

function entry(versions: string[], latest: string): IndexedPackage {
  return { versions, distTags: { latest }, deprecated: {}, time: 0 };
}

/** A storage folder with a@1.0.0/1.1.0 (latest 1.1.0) and @s/b@2.0.0, and the index that matches it. */
function fixture(): { dir: string; indexed: Map<string, IndexedPackage> } {
  const dir = mkdtempSync(join(tmpdir(), 'verified-'));
  mkdirSync(join(dir, 'a'));
  mkdirSync(join(dir, '@s', 'b'), { recursive: true });
  writeFileSync(join(dir, 'a', 'package.json'), packument('a', '1.1.0', ['1.0.0', '1.1.0']));
  writeFileSync(join(dir, '@s', 'b', 'package.json'), packument('@s/b', '2.0.0', ['2.0.0']));
  const indexed = new Map([
    ['a', entry(['1.0.0', '1.1.0'], '1.1.0')],
    ['@s/b', entry(['2.0.0'], '2.0.0')],
  ]);
  return { dir, indexed };
}

/** The states a check at `takenAtNs` records (every file read: there is no previous check). */
function firstCheck(dir: string, indexed: Map<string, IndexedPackage>, takenAtNs: bigint): VerifiedStates {
  const check = checkAgainstIndex(storedPackageFiles(dir), indexed, null, takenAtNs);
  assert.deepEqual(check.differing, []);
  assert.equal(check.read, 2);
  return check.verified;
}

/** As if recorded long after the files were last written (no entry is racy). */
function later(): bigint {
  return BigInt(Date.now()) * 1_000_000n + 60n * SECOND;
}

describe('the check against the index with .registry-verified', () => {
  test('unchanged files and index entries are not read; the list of packages is the same as the scan', () => {
    const { dir, indexed } = fixture();
    const verified = firstCheck(dir, indexed, later());
    assert.deepEqual([...verified.entries.keys()].sort(), ['@s/b', 'a']);
    const again = checkAgainstIndex(storedPackageFiles(dir), indexed, verified, later());
    assert.equal(again.read, 0);
    assert.deepEqual(again.differing, []);
    assert.equal(again.verified.entries.size, 2);
  });

  test('a package.json edited behind the index — same size, mtime put back — is read and found differing', () => {
    const { dir, indexed } = fixture();
    const file = join(dir, 'a', 'package.json');
    const verified = firstCheck(dir, indexed, later());
    const before = statSync(file);
    // latest moves to 1.0.0: same length, so the size cannot tell; the mtime is restored by hand
    writeFileSync(file, readFileSync(file, 'utf8').replace('"latest": "1.1.0"', '"latest": "1.0.0"'));
    utimesSync(file, before.atime, before.mtime);
    assert.equal(statSync(file).size, before.size);
    const check = checkAgainstIndex(storedPackageFiles(dir), indexed, verified, later());
    assert.deepEqual(check.differing, ['a']);
    assert.equal(check.read, 1, 'only the edited file is read');
    assert.ok(!check.verified.entries.has('a'), 'a differing package is not recorded');
  });

  test('an index entry that changed (a dropped record, a publish) makes its package.json be read', () => {
    const { dir, indexed } = fixture();
    const verified = firstCheck(dir, indexed, later());
    const changed = new Map(indexed);
    changed.set('a', entry(['1.0.0'], '1.0.0')); // the 1.1.0 record lost
    const check = checkAgainstIndex(storedPackageFiles(dir), changed, verified, later());
    assert.deepEqual(check.differing, ['a']);
    assert.equal(check.read, 1);
  });

  test('racy: an entry recorded within the margin of its file timestamps is never trusted', () => {
    const { dir, indexed } = fixture();
    const file = join(dir, 'a', 'package.json');
    // the file now disagrees with the index, and the record claims this very identity matched
    // (what a change in the same timestamp tick as the recorded stat would look like)
    writeFileSync(file, packument('a', '1.0.0', ['1.0.0', '1.1.0']));
    const now = identityOf(statSync(file, { bigint: true }));
    const forged = (takenAtNs: bigint): VerifiedStates => ({
      takenAtNs,
      entries: new Map<string, VerifiedEntry>([['a', { ...now, digest: indexDigest(indexed.get('a')), folder: null }]]),
    });
    const racy = checkAgainstIndex(storedPackageFiles(dir), indexed, forged(now.ctimeNs + 1_000_000n), later());
    assert.ok(racy.differing.includes('a'), 'a file changed within the margin was trusted');
    // the same record taken well after the file's timestamps is trusted: the margin is what decides
    const old = checkAgainstIndex(storedPackageFiles(dir), indexed, forged(now.ctimeNs + 10n * SECOND), later());
    assert.ok(!old.differing.includes('a'));
  });

  test('a new package, and a package gone from storage, are no business of the record', () => {
    const { dir, indexed } = fixture();
    const verified = firstCheck(dir, indexed, later());
    mkdirSync(join(dir, 'c'));
    writeFileSync(join(dir, 'c', 'package.json'), packument('c', '1.0.0', ['1.0.0']));
    const check = checkAgainstIndex(storedPackageFiles(dir), indexed, verified, later());
    assert.deepEqual(check.differing, ['c'], 'c is not in the index');
    assert.equal(check.read, 1);
  });

  test('a damaged or unreadable .registry-verified is reported and nothing is trusted from it', () => {
    const { dir, indexed } = fixture();
    const path = join(dir, VERIFIED_FILE);
    assert.deepEqual(readVerified(dir), { states: null }, 'none yet: no problem, read everything');
    writeFileSync(path, encodeVerified(firstCheck(dir, indexed, later())));
    assert.equal(readVerified(dir).states?.entries.size, 2);
    const text = readFileSync(path, 'utf8');
    // one character of the body changed (a recorded size 1 byte off): the checksum refuses it
    writeFileSync(path, text.replace(/^(a\t\d+\t\d+\t)(\d)/m, (_, head: string, d: string) => `${head}${d === '9' ? '8' : String(Number(d) + 1)}`));
    assert.notEqual(readFileSync(path, 'utf8'), text);
    const damaged = readVerified(dir);
    assert.equal(damaged.states, null);
    assert.match(damaged.problem ?? '', /SHA-256/);
    writeFileSync(path, text.slice(0, text.length - 10));
    assert.equal(readVerified(dir).states, null);
    writeFileSync(path, 'garbage');
    assert.match(readVerified(dir).problem ?? '', /first line/);
  });
});

describe('the start-up sweep with .registry-verified (package folders not listed while unchanged)', () => {
  /** One start's sweep + check + record, as plugin.ts does it, at `takenAtNs`. */
  function start(dir: string, indexed: Map<string, IndexedPackage>, previous: VerifiedStates | null, takenAtNs: bigint) {
    const listed: string[] = [];
    const listings = new FolderListings(dir, previous);
    const swept = sweepTempFiles(dir, undefined, {
      unchanged: (folder) => listings.unchanged(folder),
      listed: (folder, clean) => {
        listed.push(folder);
        listings.listed(folder, clean);
      },
    });
    const check = checkAgainstIndex(storedPackageFiles(dir), indexed, previous, takenAtNs);
    return { swept, listed, verified: withFolders(check.verified, dir, (_name, folder) => listings.clean.get(folder) ?? null) };
  }
  /** A temp file of a dead process, old enough to be abandoned. */
  function deadTemp(folder: string): string {
    const path = join(folder, `${TEMP_PREFIX}999999999-0123456789ab-package.json`);
    writeFileSync(path, '{');
    return path;
  }

  test('a clean, unchanged folder is not listed; a temp file written into it later is still swept', () => {
    const { dir, indexed } = fixture();
    const first = start(dir, indexed, null, later());
    assert.equal(first.listed.length, 2, 'no record yet: every package folder is listed');
    assert.ok([...first.verified.entries.values()].every((e) => e.folder !== null), 'clean listings are recorded');
    const second = start(dir, indexed, first.verified, later());
    assert.deepEqual(second.listed, [], 'unchanged folders are not listed');
    const temp = deadTemp(join(dir, 'a'));
    const third = start(dir, indexed, second.verified, later());
    assert.deepEqual(third.listed, [join(dir, 'a')], 'the folder that changed is listed');
    assert.deepEqual(third.swept, [temp]);
    assert.ok(!existsSync(temp));
  });

  test('a folder listed with a temp file in it is not recorded as clean', () => {
    const { dir, indexed } = fixture();
    deadTemp(join(dir, 'a'));
    const first = start(dir, indexed, null, later());
    assert.equal(first.verified.entries.get('a')?.folder, null);
    assert.notEqual(first.verified.entries.get('@s/b')?.folder, null);
  });

  test('racy: a folder recorded within the margin of its timestamps is listed again', () => {
    const { dir, indexed } = fixture();
    // recorded "now": the folders' timestamps are within the margin of the record's time
    const first = start(dir, indexed, null, BigInt(Date.now()) * 1_000_000n);
    const second = start(dir, indexed, first.verified, later());
    assert.equal(second.listed.length, 2);
  });
});

describe('.registry-verified format (fast-check)', () => {
  const digit = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
  const name = fc.string({ minLength: 1, maxLength: 30 }).filter((n) => !/[\t\n\r]/.test(n));
  const digest = fc.oneof(fc.constant('-'), fc.stringMatching(/^[0-9a-f]{32}$/));
  const identity = fc.record({ dev: digit, ino: digit, size: digit, mtimeNs: digit, ctimeNs: digit }).map((id) => ({ ...id }));
  const states = fc
    .tuple(digit, fc.uniqueArray(fc.tuple(name, identity, digest, fc.option(identity, { nil: null })), { selector: (e) => e[0], maxLength: 20 }))
    .map(([takenAtNs, rows]): VerifiedStates => ({
      takenAtNs,
      entries: new Map(rows.map(([n, id, d, folder]) => [n, { ...id, digest: d, folder }])),
    }));

  test('decode(encode(x)) is x', () => {
    fc.assert(
      fc.property(states, (s) => {
        const decoded = decodeVerified(encodeVerified(s));
        assert.ok(decoded.ok);
        assert.equal(decoded.states.takenAtNs, s.takenAtNs);
        assert.deepEqual([...decoded.states.entries], [...s.entries]);
      }),
    );
  });

  test('any changed character or cut is refused, never read as other entries', () => {
    fc.assert(
      fc.property(states, fc.nat(), fc.integer({ min: 1, max: 0xffff }), fc.boolean(), (s, at, code, cut) => {
        const text = encodeVerified(s);
        const i = at % text.length;
        const mutated = cut ? text.slice(0, i) : `${text.slice(0, i)}${String.fromCharCode(code)}${text.slice(i + 1)}`;
        fc.pre(mutated !== text);
        assert.equal(decodeVerified(mutated).ok, false);
      }),
    );
  });
});

test('a real restart: a package.json edited behind the index between two starts is re-indexed, with .registry-verified present', async () => {
  let registry = await startRegistry({ editConfig: useOurStorage });
  try {
    const token = await addUser(registry, 'verifier', 'correct-horse-battery');
    const client = createClientDir(registry, { token });
    const published = await client.npm(['publish'], { cwd: writePackage(client.dir, { name: 'edited-pkg', version: '1.0.0' }) });
    assert.equal(published.code, 0, published.stderr);
    await registry.stop();
    // past the racy margin, so the next start records the package as checked
    await new Promise((done) => setTimeout(done, 2200));
    registry = await startRegistry({ dir: registry.dir });
    assert.match(registry.logs(), /index checked against 1 package\.json file\(s\), 1 read/);
    const storage = join(registry.dir, 'storage');
    // the record is written off the start-up path: give it a moment before the (SIGTERM) stop
    for (let i = 0; i < 50 && !readVerified(storage).states?.entries.has('edited-pkg'); i++) await new Promise((done) => setTimeout(done, 100));
    await registry.stop();
    const verified = readVerified(storage);
    assert.ok(verified.states?.entries.has('edited-pkg'), 'the start recorded the package it checked');

    await new Promise((done) => setTimeout(done, 2200));
    registry = await startRegistry({ dir: registry.dir });
    assert.match(registry.logs(), /1 package\.json file\(s\), 0 read, 1 unchanged/);
    await registry.stop();

    // behind the index's back: a dist-tag added by hand, the mtime put back
    const file = join(storage, 'edited-pkg', 'package.json');
    const before = statSync(file);
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { 'dist-tags': Record<string, string> };
    doc['dist-tags'].beta = '1.0.0';
    writeFileSync(file, JSON.stringify(doc));
    utimesSync(file, before.atime, before.mtime);
    registry = await startRegistry({ dir: registry.dir });
    assert.match(registry.logs(), /1 read/);
    assert.match(registry.logs(), /rebuilt the index from storage/);
  } finally {
    await registry.stop();
  }
});
