/**
 * `npm access` reads with real npm 11 (docs/trusted-publishing.md): list packages [<user>],
 * list collaborators <pkg>, get status <pkg> — answered from the maintainers our store keeps and
 * the `packages:` access rules, never revealing a package the asker may not access.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { addUser, createClientDir, startRegistry, writePackage, type ClientDir, type RunningRegistry } from '../harness/registry';

const PASSWORD = 'correct-horse-battery';

describe('npm access list packages|collaborators, get status (real npm 11)', () => {
  let registry: RunningRegistry;
  let alice: ClientDir;
  let bob: ClientDir;
  let anonymous: ClientDir;
  let aliceToken: string;

  before(async () => {
    registry = await startRegistry({
      editConfig: (config) => {
        // a private scope next to the public default rules of config.yaml
        config.packages = {
          '@secret/*': { access: '$authenticated', publish: '$authenticated', unpublish: '$authenticated' },
          ...(config.packages as Record<string, unknown>),
        };
      },
    });
    aliceToken = await addUser(registry, 'alice', PASSWORD);
    alice = createClientDir(registry, { token: aliceToken });
    bob = createClientDir(registry, { token: await addUser(registry, 'bob', PASSWORD) });
    anonymous = createClientDir(registry);
    for (const [client, name] of [
      [alice, '@mycompany/acc-one'],
      [alice, '@secret/acc-two'],
      [bob, 'acc-bobs'],
    ] as const) {
      const published = await client.npm(['publish'], { cwd: writePackage(client.dir, { name, version: '1.0.0' }) });
      assert.equal(published.code, 0, published.stderr);
    }
    const owner = await alice.npm(['owner', 'add', 'bob', '@mycompany/acc-one']);
    assert.equal(owner.code, 0, owner.stderr);
  });
  after(async () => {
    await registry?.stop();
  });

  test('npm access list packages: the user’s own, and another user’s', async () => {
    const mine = await alice.npm(['access', 'list', 'packages']);
    assert.equal(mine.code, 0, mine.stderr);
    assert.deepEqual(mine.stdout.trim().split('\n'), ['@mycompany/acc-one: read-write', '@secret/acc-two: read-write']);
    const bobs = await alice.npm(['access', 'list', 'packages', 'bob', '--json']);
    assert.equal(bobs.code, 0, bobs.stderr);
    assert.deepEqual(JSON.parse(bobs.stdout), { '@mycompany/acc-one': 'read-write', 'acc-bobs': 'read-write' });
    // an anonymous asker never sees the private package
    const seen = await anonymous.npm(['access', 'list', 'packages', 'alice', '--json']);
    assert.equal(seen.code, 0, seen.stderr);
    assert.deepEqual(JSON.parse(seen.stdout), { '@mycompany/acc-one': 'read-write' });
    const nobody = await alice.npm(['access', 'list', 'packages', 'carol', '--json']);
    assert.equal(nobody.code, 0, nobody.stderr);
    assert.deepEqual(JSON.parse(nobody.stdout), {});
  });

  test('npm access list collaborators: the maintainers', async () => {
    const listed = await bob.npm(['access', 'list', 'collaborators', '@mycompany/acc-one']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(listed.stdout.trim().split('\n'), ['alice: read-write', 'bob: read-write']);
    const one = await bob.npm(['access', 'list', 'collaborators', '@mycompany/acc-one', 'alice']);
    assert.equal(one.stdout.trim(), 'alice: read-write');
    const hidden = await anonymous.npm(['access', 'list', 'collaborators', '@secret/acc-two']);
    assert.notEqual(hidden.code, 0, 'a package the asker may not access is not found');
    assert.match(hidden.stderr, /404/);
    const missing = await alice.npm(['access', 'list', 'collaborators', '@mycompany/none']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /404/);
  });

  test('npm access get status: public by the packages: access rule', async () => {
    const open = await alice.npm(['access', 'get', 'status', '@mycompany/acc-one']);
    assert.equal(open.code, 0, open.stderr);
    assert.equal(open.stdout.trim(), '@mycompany/acc-one: public');
    const closed = await alice.npm(['access', 'get', 'status', '@secret/acc-two']);
    assert.equal(closed.code, 0, closed.stderr);
    assert.equal(closed.stdout.trim(), '@secret/acc-two: private');
  });

  test('a maintainer whom packages: no longer lets publish sees read-only in their own list', async () => {
    registry = await registry.restart({
      editConfig: (config) => {
        config.packages = {
          '@secret/*': { access: '$authenticated', publish: 'nobody-here', unpublish: 'nobody-here' },
          ...(config.packages as Record<string, unknown>),
        };
      },
    });
    const again = createClientDir(registry, { token: aliceToken }); // the port changed
    const mine = await again.npm(['access', 'list', 'packages', '--json']);
    assert.equal(mine.code, 0, mine.stderr);
    assert.deepEqual(JSON.parse(mine.stdout), { '@mycompany/acc-one': 'read-write', '@secret/acc-two': 'read-only' });
  });

  test('no organisations: /-/org/<name>/package answers a JSON 404', async () => {
    const response = await fetch(`${registry.url}/-/org/alice/package`);
    assert.equal(response.status, 404);
    assert.equal(typeof ((await response.json()) as { error?: unknown }).error, 'string');
  });
});
