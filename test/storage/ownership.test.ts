/**
 * Issue 11 items 1 and 8 against a real registry and real npm 11:
 * - 11.1: versions must be canonical semver; build metadata is refused with a 400 (npm's own
 *   libnpmpublish strips it with semver.clean, so `npm publish` of `1.0.1+b` publishes 1.0.1);
 *   the process survives what used to end it;
 * - 11.8: maintainers — the first publisher owns the package; only owners or admins publish,
 *   unpublish, deprecate, move dist-tags or change owners; `npm owner ls|add|rm` work;
 *   `_npmUser` is the authenticated user.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ADMIN_GROUP as AUTH_ADMIN_GROUP } from '../../plugins/verdaccio-registry-auth/auth-service';
import { ADMIN_GROUP } from '../../plugins/verdaccio-registry-storage/owners';
import { addUser, createClientDir, writePackage, startRegistry, type ClientDir, type RunningRegistry } from '../harness/registry';
import { getJson, publishBody, publishRaw, putPackage, useOurStorage } from './lib/packages';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const PASSWORD = 'correct-horse-battery';

async function ping(registry: RunningRegistry): Promise<void> {
  const response = await fetch(`${registry.url}/-/ping`);
  assert.equal(response.status, 200, 'the registry is still up');
  assert.equal(registry.process.exitCode, null);
}

async function packument(registry: RunningRegistry, name: string): Promise<Json> {
  const { status, json } = await getJson(`${registry.url}/${name.replace('/', '%2f')}`);
  assert.equal(status, 200, JSON.stringify(json));
  return json as Json;
}

describe('11.1 versions are canonical semver', () => {
  let registry: RunningRegistry;
  let token: string;
  before(async () => {
    registry = await startRegistry({ editConfig: useOurStorage });
    token = await addUser(registry, 'semver-user', PASSWORD);
  });
  after(async () => {
    await registry?.stop();
  });

  test('11.1 crash: build-metadata version on an existing package is a 400 and the process survives', async () => {
    const first = await publishRaw(registry.url, token, 'crash-x', '1.0.0');
    assert.equal(first.status, 201, first.text);
    const plus = await publishRaw(registry.url, token, 'crash-x', '1.0.1+b');
    assert.equal(plus.status, 400, plus.text);
    assert.match(JSON.parse(plus.text).error, /build metadata.*publish "1\.0\.1"/);
    await ping(registry);
    const doc = await packument(registry, 'crash-x');
    assert.deepEqual(Object.keys(doc.versions), ['1.0.0']);
    assert.deepEqual(doc['dist-tags'], { latest: '1.0.0' });
  });

  test('11.1 crash: build-metadata version on a new package is a 400 (was a 500), nothing stored', async () => {
    const plus = await publishRaw(registry.url, token, 'crash-new', '2.0.0+build.7');
    assert.equal(plus.status, 400, plus.text);
    assert.match(JSON.parse(plus.text).error, /build metadata/);
    assert.equal((await fetch(`${registry.url}/crash-new`)).status, 404);
    await ping(registry);
  });

  test('11.1 non-canonical versions (v prefix, =, leading zeros, garbage) are 400s naming the problem', async () => {
    for (const version of ['v1.2.3', '=1.2.3', '01.2.3', '1.2', '1.2.3-01', 'latest', ' 1.2.3']) {
      const result = await publishRaw(registry.url, token, 'crash-x', version);
      assert.equal(result.status, 400, `${version}: ${result.text}`);
      assert.equal(typeof JSON.parse(result.text).error, 'string');
    }
    await ping(registry);
  });

  test('11.1 a real `npm publish` of a +build version publishes the version without build metadata', async () => {
    const client = createClientDir(registry, { token });
    const dir = writePackage(client.dir, { name: 'crash-npm', version: '3.1.4+build.9' });
    const published = await client.npm(['publish'], { cwd: dir });
    assert.equal(published.code, 0, published.stderr);
    const doc = await packument(registry, 'crash-npm');
    assert.deepEqual(Object.keys(doc.versions), ['3.1.4']);
    assert.deepEqual(doc['dist-tags'], { latest: '3.1.4' });
    const installer = createClientDir(registry);
    const app = writePackage(installer.dir, { name: 'crash-app', version: '0.0.0' });
    const installed = await installer.npm(['install', 'crash-npm@3.1.4'], { cwd: app });
    assert.equal(installed.code, 0, installed.stderr);
    await ping(registry);
  });
});

describe('11.8 ownership: maintainers, npm owner, _npmUser', () => {
  let registry: RunningRegistry;
  let admin: ClientDir; // the first user ever created is the admin
  let alice: ClientDir;
  let bob: ClientDir;
  let bobToken: string;
  let aliceToken: string;
  const name = '@own/lib';

  before(async () => {
    registry = await startRegistry({ editConfig: useOurStorage });
    admin = createClientDir(registry, { token: await addUser(registry, 'root-admin', PASSWORD) });
    aliceToken = await addUser(registry, 'alice', PASSWORD);
    bobToken = await addUser(registry, 'bob', PASSWORD);
    alice = createClientDir(registry, { token: aliceToken });
    bob = createClientDir(registry, { token: bobToken });
  });
  after(async () => {
    await registry?.stop();
  });

  const publish = (client: ClientDir, version: string) => client.npm(['publish'], { cwd: writePackage(client.dir, { name, version }) });

  async function bobIsRefusedEverything(label: string): Promise<void> {
    const before = await packument(registry, name);
    const published = await publish(bob, '9.0.0');
    assert.notEqual(published.code, 0, `${label}: bob published`);
    assert.match(published.stderr, /403|not a maintainer|may not/i, published.stderr);
    const tagged = await bob.npm(['dist-tag', 'add', `${name}@1.0.0`, 'bobs']);
    assert.notEqual(tagged.code, 0, `${label}: bob moved a dist-tag`);
    const deprecated = await bob.npm(['deprecate', `${name}@1.0.0`, 'bob was here']);
    assert.notEqual(deprecated.code, 0, `${label}: bob deprecated`);
    const unpublished = await bob.npm(['unpublish', `${name}@1.0.0`]);
    assert.notEqual(unpublished.code, 0, `${label}: bob unpublished`);
    const doc = await packument(registry, name);
    assert.ok(doc.versions['1.0.0'], `${label}: 1.0.0 is still there`);
    assert.equal(doc.versions['1.0.0'].deprecated, before.versions['1.0.0'].deprecated, `${label}: deprecation unchanged`);
    assert.equal(doc['dist-tags'].bobs, undefined, `${label}: no tag`);
    assert.equal(doc.versions['9.0.0'], undefined, `${label}: no 9.0.0`);
  }

  test('11.8 the auth plugin and the storage agree on the admin group; the boot timeline says ownership is enforced', () => {
    assert.equal(ADMIN_GROUP, AUTH_ADMIN_GROUP);
    assert.match(registry.logs(), /storage-http: package ownership enforced/);
  });

  test('11.8 ownership: the first publisher is the maintainer; another user is refused until `npm owner add`, and again after `npm owner rm`', async () => {
    const first = await publish(alice, '1.0.0');
    assert.equal(first.code, 0, first.stderr);
    const listed = await alice.npm(['owner', 'ls', name]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^alice\b/m);
    assert.doesNotMatch(listed.stdout, /bob/);
    const doc = await packument(registry, name);
    assert.deepEqual(doc.maintainers.map((m: Json) => m.name), ['alice']);
    assert.equal(doc.versions['1.0.0']._npmUser.name, 'alice');

    await bobIsRefusedEverything('before owner add');
    const bobAddsHimself = await bob.npm(['owner', 'add', 'bob', name]);
    assert.notEqual(bobAddsHimself.code, 0, 'bob cannot make himself an owner');

    const added = await alice.npm(['owner', 'add', 'bob', name]);
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /\+ bob/);
    const both = await bob.npm(['owner', 'ls', name]);
    assert.equal(both.code, 0, both.stderr);
    assert.match(both.stdout, /^alice\b/m);
    assert.match(both.stdout, /^bob\b/m);

    const published = await publish(bob, '1.1.0');
    assert.equal(published.code, 0, published.stderr);
    const tagged = await bob.npm(['dist-tag', 'add', `${name}@1.0.0`, 'stable']);
    assert.equal(tagged.code, 0, tagged.stderr);
    const deprecated = await bob.npm(['deprecate', `${name}@1.0.0`, 'use 1.1.0']);
    assert.equal(deprecated.code, 0, deprecated.stderr);
    const untagged = await bob.npm(['dist-tag', 'rm', name, 'stable']);
    assert.equal(untagged.code, 0, untagged.stderr);
    const unpublished = await bob.npm(['unpublish', `${name}@1.1.0`]);
    assert.equal(unpublished.code, 0, unpublished.stderr);
    const afterBob = await packument(registry, name);
    assert.equal(afterBob.versions['1.1.0'], undefined);
    assert.equal(afterBob.versions['1.0.0'].deprecated, 'use 1.1.0');

    const removed = await alice.npm(['owner', 'rm', 'bob', name]);
    assert.equal(removed.code, 0, removed.stderr);
    const onlyAlice = await alice.npm(['owner', 'ls', name]);
    assert.doesNotMatch(onlyAlice.stdout, /bob/);
    await bobIsRefusedEverything('after owner rm');
  });

  test('11.8 ownership: an unknown user cannot be added; the last owner cannot be removed', async () => {
    const unknown = await alice.npm(['owner', 'add', 'nobody-here', name]);
    assert.notEqual(unknown.code, 0, unknown.stdout);
    const user = await fetch(`${registry.url}/-/user/org.couchdb.user:bob`);
    assert.equal(user.status, 200);
    assert.equal(((await user.json()) as Json).name, 'bob');
    assert.equal((await fetch(`${registry.url}/-/user/org.couchdb.user:nobody-here`)).status, 404);
    const doc = await packument(registry, name);
    const empty = await putPackage(registry.url, aliceToken, name, JSON.stringify({ _id: name, _rev: doc._rev, maintainers: [] }), `${encodeURIComponent(name)}/-rev/${doc._rev}`);
    assert.equal(empty.status, 400, empty.text);
    assert.deepEqual((await packument(registry, name)).maintainers.map((m: Json) => m.name), ['alice']);
  });

  test('11.8 ownership: an admin overrides (dist-tag, deprecate, owners of a package it does not own)', async () => {
    const tagged = await admin.npm(['dist-tag', 'add', `${name}@1.0.0`, 'admin-pick']);
    assert.equal(tagged.code, 0, tagged.stderr);
    const added = await admin.npm(['owner', 'add', 'bob', name]);
    assert.equal(added.code, 0, added.stderr);
    const removed = await admin.npm(['owner', 'rm', 'bob', name]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal((await packument(registry, name))['dist-tags']['admin-pick'], '1.0.0');
  });

  test('11.8 ownership: _npmUser is the authenticated user, never the body', async () => {
    const { body } = publishBody(registry.url, 'own-forged', '1.0.0', { extra: { _npmUser: { name: 'alice', email: 'alice@example.com' }, maintainers: [{ name: 'alice' }] } });
    const forged = await putPackage(registry.url, bobToken, 'own-forged', body);
    assert.equal(forged.status, 201, forged.text);
    const doc = await packument(registry, 'own-forged');
    assert.equal(doc.versions['1.0.0']._npmUser.name, 'bob');
    assert.deepEqual(doc.maintainers.map((m: Json) => m.name), ['bob']);
    assert.deepEqual(doc.versions['1.0.0'].maintainers.map((m: Json) => m.name), ['bob']);
    // and alice, named in the forged body, does not own it
    const alicePublish = await publishRaw(registry.url, aliceToken, 'own-forged', '1.0.1');
    assert.equal(alicePublish.status, 403, alicePublish.text);
    assert.match(JSON.parse(alicePublish.text).error, /maintainers \(bob\)/);
  });

  test('11.8 ownership: raw DELETE unpublish and dist-tag removal by a non-owner are 403s', async () => {
    const doc = await packument(registry, name);
    const auth = { authorization: `Bearer ${bobToken}` };
    const whole = await fetch(`${registry.url}/${encodeURIComponent(name)}/-rev/${doc._rev}`, { method: 'DELETE', headers: auth });
    assert.equal(whole.status, 403, await whole.text());
    const tarball = await fetch(`${registry.url}/${encodeURIComponent(name)}/-/lib-1.0.0.tgz/-rev/${doc._rev}`, { method: 'DELETE', headers: auth });
    assert.equal(tarball.status, 403, await tarball.text());
    const tag = await fetch(`${registry.url}/-/package/${encodeURIComponent(name)}/dist-tags/latest`, { method: 'DELETE', headers: auth });
    assert.equal(tag.status, 403, await tag.text());
    const after = await packument(registry, name);
    assert.equal(after['dist-tags'].latest, doc['dist-tags'].latest);
    assert.ok((await fetch(`${registry.url}/${name}/-/lib-1.0.0.tgz`)).ok);
  });
});
