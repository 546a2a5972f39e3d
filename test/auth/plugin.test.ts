/**
 * The plugin object as Verdaccio drives it (constructor arguments and callback methods of
 * Verdaccio 6.10.4's auth contract), on real files, in process: the library exports, the
 * presence announcement, authenticate/adduser and the `packages:` access checks.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createConfigFile, defaultFields, isRegistryCoreError } from '../../plugins/registry-core/index';
import { onPluginLoaded, type PluginAnnouncement } from '../../plugins/registry-core/plugin-presence';
import RegistryAuthPlugin, { getIssuer, getTokenAlgorithm, issueLocalToken, verifyToken } from '../../plugins/verdaccio-registry-auth/index';
import type { VerdaccioError, VerdaccioRemoteUser } from '../../plugins/verdaccio-boundary/index';

function registryFolder(): { dir: string; configPath: string } {
  const dir = mkdtempSync(join(tmpdir(), 'auth-plugin-'));
  const configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, '# the plugin only needs the folder of config.yaml\n');
  createConfigFile(join(dir, 'registry.lockb'), defaultFields());
  return { dir, configPath };
}

/** What Verdaccio 6.10.4 passes: our section merged into the whole config, plus {config, logger}. */
function construct(configPath: string, section: Record<string, unknown> = {}): RegistryAuthPlugin {
  const merged = { storage: './storage', registry_lockb: './registry.lockb', file: './htpasswd', max_users: 100, ...section };
  return new RegistryAuthPlugin(merged, { config: { configPath, self_path: configPath } });
}

function call<T>(fn: (cb: (error: VerdaccioError | null, value?: T) => void) => void): Promise<{ error: VerdaccioError | null; value?: T }> {
  return new Promise((resolve) => fn((error, value) => resolve({ error, value })));
}

const user = (name: string | undefined, groups: string[]): VerdaccioRemoteUser => ({ name, groups, real_groups: [] });

describe('the plugin object as Verdaccio drives it', () => {
  test('announces itself, binds the library exports to the running instance', async () => {
    const { configPath } = registryFolder();
    const seen: PluginAnnouncement[] = [];
    const stop = onPluginLoaded((announcement) => seen.push(announcement));
    try {
      construct(configPath);
    } finally {
      stop();
    }
    assert.equal(seen.length, 1);
    assert.equal(seen[0].part, 'auth');
    assert.match(seen[0].detail, /EdDSA, issuer http:\/\/localhost:4873\/_auth/);
    assert.equal(getTokenAlgorithm(), 'EdDSA');
    assert.deepEqual(getIssuer(), { url: 'http://localhost:4873/_auth', kind: 'private' });
    const issued = await issueLocalToken('someone', ['someone']);
    const verified = await verifyToken(issued.token);
    assert.equal(verified.user, 'someone');
    await assert.rejects(verifyToken(`${issued.token}x`));
  });

  test('adduser then authenticate: groups are the name plus registry-admin for the first user; 401 for a wrong password', async () => {
    const { dir, configPath } = registryFolder();
    const plugin = construct(configPath);
    assert.equal((await call<boolean | string>((cb) => plugin.adduser('first', 'first-password', cb))).value, true);
    assert.equal((await call<boolean | string>((cb) => plugin.adduser('second', 'second-password', cb))).value, true);
    const duplicate = await call<boolean | string>((cb) => plugin.adduser('second', 'second-password', cb));
    assert.equal(duplicate.error?.status, 409);
    const short = await call<boolean | string>((cb) => plugin.adduser('third', 'short', cb));
    assert.equal(short.error?.status, 400);
    assert.deepEqual((await call<string[] | false>((cb) => plugin.authenticate('first', 'first-password', cb))).value, ['first', 'registry-admin']);
    assert.deepEqual((await call<string[] | false>((cb) => plugin.authenticate('second', 'second-password', cb))).value, ['second']);
    assert.equal((await call<string[] | false>((cb) => plugin.authenticate('second', 'wrong-password', cb))).error?.status, 401);
    assert.equal((await call<string[] | false>((cb) => plugin.authenticate('nobody', 'whatever-pass', cb))).error?.status, 401);
    assert.match(readFileSync(join(dir, 'htpasswd'), 'utf8'), /^first:\$2b\$10\$/m);
    const changed = await call<boolean>((cb) => plugin.changePassword('second', 'second-password', 'second-password-2', cb));
    assert.equal(changed.value, true);
    assert.deepEqual((await call<string[] | false>((cb) => plugin.authenticate('second', 'second-password-2', cb))).value, ['second']);
  });

  test('admins listed in the config replace the first-user rule', async () => {
    const { configPath } = registryFolder();
    const plugin = construct(configPath, { admins: ['boss'] });
    await call((cb) => plugin.adduser('first', 'first-password', cb));
    await call((cb) => plugin.adduser('boss', 'boss-password', cb));
    assert.deepEqual((await call<string[] | false>((cb) => plugin.authenticate('first', 'first-password', cb))).value, ['first']);
    assert.deepEqual((await call<string[] | false>((cb) => plugin.authenticate('boss', 'boss-password', cb))).value, ['boss', 'registry-admin']);
  });

  test('allow_access / allow_publish / allow_unpublish honour the packages: rule Verdaccio matched', async () => {
    const { configPath } = registryFolder();
    const plugin = construct(configPath);
    const rule = { name: '@team/lib', access: ['$all'], publish: ['$authenticated'], unpublish: ['admins-group'] };
    const anonymous = user(undefined, ['$all', '$anonymous', '@all', '@anonymous']);
    const alice = user('alice', ['alice', '$all', '$authenticated', '@all', '@authenticated', 'all']);
    const admin = user('root', ['root', 'admins-group', '$all', '$authenticated']);
    assert.equal((await call<boolean>((cb) => plugin.allow_access(anonymous, rule, cb))).value, true);
    const anonymousPublish = await call<boolean>((cb) => plugin.allow_publish(anonymous, rule, cb));
    assert.equal(anonymousPublish.error?.status, 401);
    assert.equal((await call<boolean>((cb) => plugin.allow_publish(alice, rule, cb))).value, true);
    const aliceUnpublish = await call<boolean>((cb) => plugin.allow_unpublish(alice, rule, cb));
    assert.equal(aliceUnpublish.error?.status, 403);
    assert.match(aliceUnpublish.error?.message ?? '', /alice is not allowed to unpublish package @team\/lib/);
    assert.equal((await call<boolean>((cb) => plugin.allow_unpublish(admin, rule, cb))).value, true);
    const noUnpublishRule = { name: 'plain', access: ['$all'], publish: ['alice'], unpublish: false };
    assert.equal((await call<boolean>((cb) => plugin.allow_unpublish(alice, noUnpublishRule, cb))).value, true, 'no unpublish rule: publish rights apply');
    const privateRule = { name: 'secret', access: ['$authenticated'], publish: ['root'] };
    assert.equal((await call<boolean>((cb) => plugin.allow_access(anonymous, privateRule, cb))).error?.status, 401);
    assert.equal((await call<boolean>((cb) => plugin.allow_publish(alice, privateRule, cb))).error?.status, 403);
  });

  test('the constructor throws (so start-up refuses) on an invalid registry.lockb or a broken htpasswd', () => {
    const broken = registryFolder();
    const lockb = join(broken.dir, 'registry.lockb');
    const bytes = readFileSync(lockb);
    bytes[0] = 0x58;
    writeFileSync(lockb, bytes);
    assert.throws(() => construct(broken.configPath), (error: unknown) => isRegistryCoreError(error, 'ERR_LOCKB_MAGIC'));

    const badUsers = registryFolder();
    writeFileSync(join(badUsers.dir, 'htpasswd'), 'no colon here\n');
    assert.throws(() => construct(badUsers.configPath), /not an htpasswd line/);
  });
});
