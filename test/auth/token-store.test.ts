import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { LAST_USED_RESOLUTION_MS, TokenStore, TokenStoreError, maskToken, type IssuedTokenRecord } from '../../plugins/registry-core/token-store';

function tempFile(): string {
  return join(mkdtempSync(join(tmpdir(), 'token-store-')), 'storage', '.registry-tokens.json');
}

function record(overrides: Partial<IssuedTokenRecord> = {}): IssuedTokenRecord {
  return {
    key: 'k1',
    user: 'alice',
    created: Date.now(),
    expiresAt: Date.now() + 60_000,
    readonly: false,
    cidr: [],
    token: maskToken('eyJhbGciOiJFZERTQSJ9.payload.sig'),
    ...overrides,
  };
}

describe('TokenStore', () => {
  test('save, list per user, persisted atomically with mode 0600 and read back by a new instance', () => {
    const file = tempFile();
    const store = TokenStore.open(file);
    store.save(record({ key: 'a', user: 'alice', readonly: true, cidr: ['10.0.0.0/8'] }));
    store.save(record({ key: 'b', user: 'bob' }));
    assert.deepEqual(
      store.list('alice').map((r) => [r.key, r.readonly, r.cidr]),
      [['a', true, ['10.0.0.0/8']]],
    );
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(join(file, '..')), ['.registry-tokens.json'], 'no temp file left behind');
    store.close();

    const reopened = TokenStore.open(file);
    assert.equal(reopened.list('bob').length, 1);
    assert.equal(reopened.get('a')?.user, 'alice');
    reopened.close();
  });

  test('one shared instance per path in a process; close is ref-counted', () => {
    const file = tempFile();
    const first = TokenStore.open(file);
    const second = TokenStore.open(join(file, '..', '.', '.registry-tokens.json'));
    assert.equal(first, second);
    first.save(record({ key: 'shared' }));
    first.close();
    assert.equal(second.get('shared')?.key, 'shared', 'still open for the second holder');
    second.close();
    assert.throws(() => second.list('alice'), (error: unknown) => (error as TokenStoreError).code === 'ERR_TOKEN_STORE_CLOSED');
    const third = TokenStore.open(file);
    assert.notEqual(third, first);
    third.close();
  });

  test('revoke: only the owner, removes the record, remembers the jti, survives reopening', () => {
    const file = tempFile();
    const store = TokenStore.open(file);
    store.save(record({ key: 'k', user: 'alice' }));
    assert.throws(() => store.revoke('mallory', 'k'), (error: unknown) => (error as TokenStoreError).code === 'ERR_TOKEN_NOT_FOUND');
    assert.equal(store.isRevoked('k'), false);
    const removed = store.revoke('alice', 'k');
    assert.equal(removed.key, 'k');
    assert.equal(store.isRevoked('k'), true);
    assert.deepEqual(store.list('alice'), []);
    assert.throws(() => store.revoke('alice', 'k'), (error: unknown) => (error as TokenStoreError).code === 'ERR_TOKEN_NOT_FOUND');
    store.close();
    const reopened = TokenStore.open(file);
    assert.equal(reopened.isRevoked('k'), true);
    reopened.close();
  });

  test('revokeJti is idempotent and works for tokens that were never recorded (login tokens)', () => {
    const file = tempFile();
    const store = TokenStore.open(file);
    store.revokeJti('login-jti', Date.now() + 60_000);
    store.revokeJti('login-jti', Date.now() + 60_000);
    assert.equal(store.isRevoked('login-jti'), true);
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { revoked: unknown[] };
    assert.equal(saved.revoked.length, 1);
    store.close();
  });

  test('prune drops expired records and revocations, keeps the rest', () => {
    const file = tempFile();
    const store = TokenStore.open(file);
    const now = Date.now();
    store.save(record({ key: 'old', expiresAt: now + 1000 }));
    store.save(record({ key: 'new', expiresAt: now + 100_000 }));
    store.save(record({ key: 'forever', expiresAt: null }));
    store.revokeJti('gone', now + 1000);
    store.revokeJti('kept', now + 100_000);
    assert.equal(store.list('alice', now + 2000).length, 2, 'expired records are not listed');
    assert.equal(store.prune(now + 2000), 2);
    assert.equal(store.get('old'), undefined);
    assert.equal(store.isRevoked('gone'), false);
    assert.equal(store.isRevoked('kept'), true);
    assert.ok(store.get('forever'));
    store.close();
  });

  test('refuses duplicate keys and malformed records without changing the file', () => {
    const file = tempFile();
    const store = TokenStore.open(file);
    store.save(record({ key: 'dup' }));
    const before = readFileSync(file, 'utf8');
    assert.throws(() => store.save(record({ key: 'dup' })), (error: unknown) => (error as TokenStoreError).code === 'ERR_TOKEN_RECORD');
    assert.throws(
      () => store.save({ ...record({ key: 'bad' }), cidr: 'nope' } as unknown as IssuedTokenRecord),
      (error: unknown) => (error as TokenStoreError).code === 'ERR_TOKEN_RECORD',
    );
    assert.equal(readFileSync(file, 'utf8'), before);
    store.close();
  });

  test('a corrupt file is never silently replaced: open throws ERR_TOKEN_STORE_CORRUPT', () => {
    const file = tempFile();
    TokenStore.open(file).close();
    writeFileSync(file, '{"version":1,"tokens":[{"key":1}],"revoked":[]}');
    assert.throws(() => TokenStore.open(file), (error: unknown) => (error as TokenStoreError).code === 'ERR_TOKEN_STORE_CORRUPT');
    writeFileSync(file, '{not json');
    assert.throws(() => TokenStore.open(file), (error: unknown) => (error as TokenStoreError).code === 'ERR_TOKEN_STORE_CORRUPT');
    assert.equal(readFileSync(file, 'utf8'), '{not json');
  });

  test('11.4 invalidateUser bumps the user\'s generation durably and drops only that user\'s records', () => {
    const file = tempFile();
    // a file from before generations existed still loads (every user at generation 0)
    TokenStore.open(file).close(); // creates the folder
    writeFileSync(file, `${JSON.stringify({ version: 1, tokens: [record({ key: 'old', user: 'alice' })], revoked: [] })}\n`);
    const store = TokenStore.open(file);
    assert.equal(store.generation('alice'), 0);
    store.save(record({ key: 'bob-1', user: 'bob' }));
    store.save(record({ key: 'alice-2', user: 'alice', kind: 'session' }));
    assert.equal(store.invalidateUser('alice'), 1);
    assert.equal(store.invalidateUser('__proto__'), 1, 'any user name, even one that is special to JavaScript objects');
    assert.deepEqual(store.list('alice'), []);
    assert.equal(store.list('bob').length, 1);
    assert.equal(store.generation('bob'), 0);
    store.close();
    const reopened = TokenStore.open(file);
    assert.equal(reopened.generation('alice'), 1, 'survives a reopen');
    assert.equal(reopened.generation('__proto__'), 1);
    assert.equal(reopened.generation('constructor'), 0);
    assert.equal(reopened.invalidateUser('alice'), 2);
    reopened.close();
    writeFileSync(file, '{"version":1,"tokens":[],"revoked":[],"generations":{"alice":-1}}');
    assert.throws(() => TokenStore.open(file), (error: unknown) => (error as TokenStoreError).code === 'ERR_TOKEN_STORE_CORRUPT');
  });

  test('maskToken never reveals more than the prefix', () => {
    const token = 'eyJhbGciOiJFZERTQSIsImtpZCI6IngifQ.eyJzdWIiOiJhIn0.c2ln';
    const masked = maskToken(token);
    assert.equal(masked, 'eyJhbG…');
    assert.ok(!masked.includes('c2ln'));
  });
});

test('19.4 markUsed keeps "last used" per token in memory, at most once per resolution, and flushLastUsed writes it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'token-store-used-'));
  try {
    const file = join(dir, 'tokens.json');
    const store = TokenStore.open(file);
    store.save({ key: 'k1', user: 'alice', created: 1_000, expiresAt: null, readonly: false, cidr: [], token: 'eyJhbG…' });
    assert.equal(store.flushLastUsed(), false, 'nothing to write yet');
    store.markUsed('k1', 5_000_000);
    store.markUsed('unknown', 5_000_000);
    assert.equal(store.get('k1')?.lastUsed, 5_000_000);
    store.markUsed('k1', 5_000_000 + LAST_USED_RESOLUTION_MS - 1);
    assert.equal(store.get('k1')?.lastUsed, 5_000_000, 'within the resolution: not marked again');
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).tokens[0].lastUsed, undefined, 'in memory until flushed');
    assert.equal(store.flushLastUsed(), true);
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).tokens[0].lastUsed, 5_000_000);
    assert.equal(store.flushLastUsed(), false, 'written once');
    store.close();
    const reopened = TokenStore.open(file);
    assert.equal(reopened.get('k1')?.lastUsed, 5_000_000, 'survives a reopen');
    reopened.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
