/**
 * Issue 11 item 9, metadata integrity, against a real registry:
 * (a) a `/-rev/` change cannot point a dist-tag at a version the package does not have;
 * (b) a version and the dist-tag its publish sets land in ONE packument write — no reader and no
 *     SIGKILL ever sees the version untagged;
 * (c) a dist-tag / deprecate record dropped from the tail of registry.lockb is repaired at
 *     start-up (the reconciliation compares dist-tags and deprecations, not only versions).
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync, truncateSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import semver from 'semver';
import { PackageIndex, foldIndex } from '../../plugins/registry-core/index';
import { verifyStorage } from '../../plugins/verdaccio-registry-storage/verify';
import { addUser, createClientDir, startRegistry, writePackage, type RunningRegistry } from '../harness/registry';
import { getJson, publishRaw, putPackage, useOurStorage } from './lib/packages';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const PASSWORD = 'correct-horse-battery';

async function packument(registry: RunningRegistry, name: string): Promise<Json> {
  const { status, json } = await getJson(`${registry.url}/${name.replace('/', '%2f')}`);
  assert.equal(status, 200, JSON.stringify(json));
  return json as Json;
}

function indexed(registry: RunningRegistry, name: string) {
  const index = PackageIndex.open(registry.lockbPath);
  try {
    return foldIndex(index.readAll()).get(name);
  } finally {
    index.close();
  }
}

test('11.9a a /-rev/ change pointing a dist-tag at a missing version is a 400 and changes nothing; the owner can still deprecate and unpublish', async () => {
  const registry = await startRegistry({ editConfig: useOurStorage });
  try {
    const token = await addUser(registry, 'tagger', PASSWORD);
    for (const version of ['1.0.0', '1.1.0']) assert.equal((await publishRaw(registry.url, token, 'dangle', version)).status, 201);
    const doc = await packument(registry, 'dangle');
    const forged = structuredClone(doc);
    forged.versions['9.9.9'] = { ...forged.versions['1.1.0'], version: '9.9.9' };
    forged['dist-tags'] = { latest: '9.9.9' };
    const refused = await putPackage(registry.url, token, 'dangle', JSON.stringify(forged), `dangle/-rev/${doc._rev}`);
    assert.equal(refused.status, 400, refused.text);
    assert.match(JSON.parse(refused.text).error, /9\.9\.9/);
    const after = await packument(registry, 'dangle');
    assert.deepEqual(after['dist-tags'], { latest: '1.1.0' });
    assert.deepEqual(Object.keys(after.versions).sort(), ['1.0.0', '1.1.0']);

    const client = createClientDir(registry, { token });
    const deprecated = await client.npm(['deprecate', 'dangle@1.0.0', 'old']);
    assert.equal(deprecated.code, 0, deprecated.stderr);
    const unpublished = await client.npm(['unpublish', 'dangle@1.1.0']);
    assert.equal(unpublished.code, 0, unpublished.stderr);
    const final = await packument(registry, 'dangle');
    assert.deepEqual(Object.keys(final.versions), ['1.0.0']);
    assert.equal(final.versions['1.0.0'].deprecated, 'old');
    for (const [tag, version] of Object.entries(final['dist-tags'])) assert.ok(final.versions[version as string], `${tag} → ${version}`);
  } finally {
    await registry.stop();
  }
});

/** Every state of package.json a watcher sees: each version present must already carry the tag its publish set. */
function untaggedStates(file: string, onState: (doc: Json) => string | null): { stop(): string[]; seen(): number } {
  const problems: string[] = [];
  let seen = 0;
  let last = '';
  const look = (): void => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return; // between rename and re-creation, or not there yet
    }
    if (text === last) return;
    last = text;
    let doc: Json;
    try {
      doc = JSON.parse(text) as Json;
    } catch {
      problems.push('a torn package.json');
      return;
    }
    seen += 1;
    const problem = onState(doc);
    if (problem !== null) problems.push(problem);
  };
  const watcher = watch(join(file, '..'), () => look());
  return {
    stop: () => {
      watcher.close();
      return problems;
    },
    seen: () => seen,
  };
}

test('11.9a a dist-tag already stored pointing nowhere (written before the rule, or by hand) is never served, and the owner can still deprecate', async () => {
  let registry = await startRegistry({ editConfig: useOurStorage });
  try {
    const token = await addUser(registry, 'legacy-tagger', PASSWORD);
    assert.equal((await publishRaw(registry.url, token, 'ghost-tag', '1.0.0')).status, 201);
    await registry.stop();
    const file = join(registry.storageDir, 'ghost-tag', 'package.json');
    const stored = JSON.parse(readFileSync(file, 'utf8')) as Json;
    stored['dist-tags'].ghost = '7.7.7';
    writeFileSync(file, JSON.stringify(stored, null, '\t'));
    registry = await startRegistry({ dir: registry.dir });
    const doc = await packument(registry, 'ghost-tag');
    assert.deepEqual(doc['dist-tags'], { latest: '1.0.0' });
    const client = createClientDir(registry, { token });
    const deprecated = await client.npm(['deprecate', 'ghost-tag@1.0.0', 'superseded']);
    assert.equal(deprecated.code, 0, deprecated.stderr);
    const after = await packument(registry, 'ghost-tag');
    assert.equal(after.versions['1.0.0'].deprecated, 'superseded');
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8'))['dist-tags'], { latest: '1.0.0' }, 'the write repaired the stored document');
  } finally {
    await registry.stop();
  }
});

test('11.9 a raw DELETE of a listed version\'s tarball is a 409 and the version stays installable (found by the ownership fuzz)', async () => {
  const registry = await startRegistry({ editConfig: useOurStorage });
  try {
    const token = await addUser(registry, 'deleter', PASSWORD);
    for (const version of ['1.0.0', '1.1.0']) assert.equal((await publishRaw(registry.url, token, 'keep-tgz', version)).status, 201);
    const doc = await packument(registry, 'keep-tgz');
    const removed = await fetch(`${registry.url}/keep-tgz/-/keep-tgz-1.0.0.tgz/-rev/${doc._rev}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    assert.equal(removed.status, 409, await removed.text());
    assert.equal((await fetch(`${registry.url}/keep-tgz/-/keep-tgz-1.0.0.tgz`)).status, 200);
    // npm's order (document without the version, then the tarball) still works
    const client = createClientDir(registry, { token });
    const unpublished = await client.npm(['unpublish', 'keep-tgz@1.0.0']);
    assert.equal(unpublished.code, 0, unpublished.stderr);
    assert.equal((await fetch(`${registry.url}/keep-tgz/-/keep-tgz-1.0.0.tgz`)).status, 404);
    assert.deepEqual(verifyStorage(registry.storageDir, registry.lockbPath), []);
  } finally {
    await registry.stop();
  }
});

test('11.9b a publish writes the version and its dist-tag in one packument write (watched states, then SIGKILLs)', async () => {
  let registry = await startRegistry({ editConfig: useOurStorage });
  const name = 'atomic-tag';
  try {
    const token = await addUser(registry, 'atomic', PASSWORD);
    assert.equal((await publishRaw(registry.url, token, name, '0.0.1')).status, 201);
    const file = join(registry.storageDir, name, 'package.json');
    // every publish is tagged latest and versions only grow: latest must always be the highest stored version
    const highestIsLatest = (doc: Json): string | null => {
      const versions = Object.keys(doc.versions ?? {});
      const highest = versions.sort(semver.compare).at(-1);
      return doc['dist-tags']?.latest === highest ? null : `stored ${highest} while latest was ${doc['dist-tags']?.latest}`;
    };
    const watching = untaggedStates(file, highestIsLatest);
    for (let i = 1; i <= 40; i += 1) {
      const result = await publishRaw(registry.url, token, name, `1.0.${i}`);
      assert.equal(result.status, 201, result.text);
    }
    await new Promise((resolve) => setTimeout(resolve, 50)); // let the last watch events arrive
    const seen = watching.seen();
    assert.deepEqual(watching.stop(), []);
    assert.ok(seen >= 40, `the watcher saw only ${seen} states`);

    // SIGKILL in the middle of publishing: whatever survived is tagged
    let version = 100;
    for (let round = 0; round < 4; round += 1) {
      let running = true;
      const loop = (async () => {
        while (running) {
          try {
            await publishRaw(registry.url, token, name, `2.0.${version++}`);
          } catch {
            return;
          }
        }
      })();
      await new Promise((resolve) => setTimeout(resolve, 150 + round * 120));
      await registry.stop('SIGKILL');
      running = false;
      await loop;
      registry = await startRegistry({ dir: registry.dir });
      const doc = await packument(registry, name);
      assert.equal(highestIsLatest(doc), null, `round ${round}`);
    }
  } finally {
    await registry.stop();
  }
});

/** Cuts the last record of registry.lockb in half: start-up drops it as a torn tail. */
function tearLastRecord(lockbPath: string, recordBytes: number): void {
  truncateSync(lockbPath, statSync(lockbPath).size - Math.ceil(recordBytes / 2));
}

test('11.9c a dist-tag or deprecate record dropped from the index tail is repaired at start-up', async () => {
  let registry = await startRegistry({ editConfig: useOurStorage });
  try {
    const token = await addUser(registry, 'tailer', PASSWORD);
    let client = createClientDir(registry, { token });
    const published = await client.npm(['publish'], { cwd: writePackage(client.dir, { name: 'tail-pkg', version: '1.0.0' }) });
    assert.equal(published.code, 0, published.stderr);

    for (const [label, command, check] of [
      ['dist-tag', ['dist-tag', 'add', 'tail-pkg@1.0.0', 'beta'], (entry: ReturnType<typeof indexed>) => assert.equal(entry?.distTags.beta, '1.0.0')],
      ['deprecate', ['deprecate', 'tail-pkg@1.0.0', 'do not use'], (entry: ReturnType<typeof indexed>) => assert.equal(entry?.deprecated['1.0.0'], 'do not use')],
    ] as const) {
      const size = statSync(registry.lockbPath).size;
      const changed = await client.npm([...command]);
      assert.equal(changed.code, 0, changed.stderr);
      const recordBytes = statSync(registry.lockbPath).size - size;
      assert.ok(recordBytes > 0, `${label}: an index record was appended`);
      check(indexed(registry, 'tail-pkg'));
      await registry.stop();
      tearLastRecord(registry.lockbPath, recordBytes);
      registry = await startRegistry({ dir: registry.dir });
      assert.match(registry.logs(), /dropped a torn last record/, label);
      assert.match(registry.logs(), /rebuilt the index from storage/, `${label}: the dropped record was not noticed`);
      check(indexed(registry, 'tail-pkg'));
      client = createClientDir(registry, { token }); // the restarted registry has another port
    }
  } finally {
    await registry.stop();
  }
});
