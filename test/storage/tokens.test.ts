/**
 * `npm token` records: the storage plugin's saveToken / readTokens / deleteToken (used by
 * Verdaccio's token routes and its generated-token checks) persist through the core TokenStore,
 * the same file and instance the auth plugin revokes through.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { TOKEN_STORE_FILE, TokenStore } from '../../plugins/registry-core/token-store';
import { StorageError } from '../../plugins/verdaccio-registry-storage/errors';
import { TokenLedger } from '../../plugins/verdaccio-registry-storage/tokens';
import { addUser, createClientDir, startRegistry } from '../harness/registry';
import { useOurStorage } from './lib/packages';

const root = mkdtempSync(join(tmpdir(), 'storage-tokens-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('ledger: save, read per user, delete; the file and the shared TokenStore agree', async () => {
  const ledger = new TokenLedger(root);
  await ledger.save({ user: 'ann', token: 'abcde…', key: 'k1', readonly: true, cidr: ['10.0.0.0/8'], created: 1_700_000_000_000 });
  await ledger.save({ user: 'ann', token: 'fghij…', key: 'k2', readonly: false, created: '2026-01-01T00:00:00.000Z' });
  await ledger.save({ user: 'bob', token: 'zzzzz…', key: 'k3', readonly: false, created: 1 });
  const ann = await ledger.read('ann');
  assert.deepEqual(
    ann.map((t) => [t.key, t.readonly, t.cidr, t.created]),
    [
      ['k1', true, ['10.0.0.0/8'], 1_700_000_000_000],
      ['k2', false, [], Date.parse('2026-01-01T00:00:00.000Z')],
    ],
  );
  assert.deepEqual((await ledger.read('nobody')), []);
  const onDisk = JSON.parse(readFileSync(join(root, TOKEN_STORE_FILE), 'utf8')) as { tokens: Array<{ key: string }> };
  assert.deepEqual(onDisk.tokens.map((t) => t.key).sort(), ['k1', 'k2', 'k3']);

  const shared = TokenStore.open(join(root, TOKEN_STORE_FILE));
  await ledger.delete('ann', 'k1');
  assert.ok(shared.isRevoked('k1'), 'a token deleted through storage is revoked for the auth plugin too');
  shared.close();
  await assert.rejects(ledger.delete('ann', 'k3'), (error: unknown) => error instanceof StorageError && error.code === 'ERR_NOT_FOUND');
  assert.deepEqual((await ledger.read('ann')).map((t) => t.key), ['k2']);
  ledger.close();
});

test('HTTP: npm token create (API), npm token list, revoke — through the running registry', async () => {
  const registry = await startRegistry({ editConfig: useOurStorage });
  try {
    const token = await addUser(registry, 'tokenista', 'correct-horse-battery');
    const created = await fetch(`${registry.url}/-/npm/v1/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ password: 'correct-horse-battery', readonly: true, cidr_whitelist: [] }),
    });
    const body = (await created.json()) as { key?: string; token?: string; readonly?: boolean };
    assert.ok(created.status === 200 || created.status === 201, `${created.status} ${JSON.stringify(body)}`);
    assert.ok(body.key && body.token);
    const client = createClientDir(registry, { token });
    const listed = await client.npm(['token', 'list', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const list = JSON.parse(listed.stdout) as Array<{ key?: string; id?: string; readonly?: boolean }>;
    assert.ok(list.some((item) => (item.key ?? item.id) === body.key && item.readonly === true), listed.stdout);
    const revoked = await fetch(`${registry.url}/-/npm/v1/tokens/token/${body.key}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    assert.ok(revoked.status < 300, `revoke: ${revoked.status}`);
    const again = await client.npm(['token', 'list', '--json']);
    const after = JSON.parse(again.stdout) as Array<{ key?: string; id?: string }>;
    assert.ok(!after.some((item) => (item.key ?? item.id) === body.key));
    assert.ok(!readFileSync(join(registry.storageDir, TOKEN_STORE_FILE), 'utf8').includes(body.token!), 'the full token is never stored');
  } finally {
    await registry.stop();
  }
});
