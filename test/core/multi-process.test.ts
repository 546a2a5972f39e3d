/**
 * Issue 16.4: the token store, the htpasswd file and `rebuild-index` are safe across processes.
 * Every test runs TWO real Node processes (or the test process and a child) against one folder.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { PackageIndex, createConfigFile, defaultFields } from '../../plugins/registry-core/index';
import { withFileLockSync } from '../../plugins/registry-core/lock';
import { TOKEN_STORE_FILE, TokenStore } from '../../plugins/registry-core/token-store';
import { UserStore } from '../../plugins/verdaccio-registry-auth/users';
import { LockbIndexSink } from '../../plugins/verdaccio-registry-storage/lockb-sink';

const execFileAsync = promisify(execFile);
const WORKER = join(__dirname, 'fixtures', 'store-worker.js');
const root = mkdtempSync(join(tmpdir(), 'multi-process-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshDir = (): string => {
  const dir = join(root, `case-${++counter}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};
const run = (...args: string[]) => execFileAsync(process.execPath, [WORKER, ...args], { timeout: 120_000 });

test('16.4 token store: two processes saving and revoking at once lose no record and no revocation', async () => {
  const file = join(freshDir(), TOKEN_STORE_FILE);
  const count = 40;
  const results = await Promise.all([run('tokens', file, 'a', String(count)), run('tokens', file, 'b', String(count))]);
  for (const { stdout } of results) assert.equal(stdout.trim(), 'done');

  const store = TokenStore.open(file);
  try {
    for (const prefix of ['a', 'b']) {
      const kept = store.list(prefix).map((record) => record.key);
      const expected = Array.from({ length: count }, (_, i) => i).filter((i) => i % 2 === 0).map((i) => `${prefix}-${i}`);
      assert.deepEqual(kept, expected, `process ${prefix}: every saved and not revoked record is there`);
      for (let i = 0; i < count; i++) {
        assert.equal(store.isRevoked(`${prefix}-${i}`), i % 2 === 1, `${prefix}-${i} revoked iff it was revoked`);
        assert.equal(store.isRevoked(`${prefix}-foreign-${i}`), true, `foreign revocation ${prefix}-foreign-${i} kept`);
      }
    }
  } finally {
    store.close();
  }
});

test('16.4 token store: a revocation written by another process is seen by an open store and survives its next write', async () => {
  const file = join(freshDir(), TOKEN_STORE_FILE);
  const store = TokenStore.open(file);
  try {
    store.revokeJti('mine-before', null);
    assert.equal(store.isRevoked('c-foreign-0'), false);
    await run('tokens', file, 'c', '2'); // saves c-0, c-1; revokes c-1, c-foreign-0, c-foreign-1
    assert.equal(store.isRevoked('c-foreign-0'), true, 'the open store sees the other process revocation without a restart');
    assert.deepEqual(store.list('c').map((record) => record.key), ['c-0']);
    store.revokeJti('mine-after', null); // a whole-file rewrite by this process
    const onDisk = JSON.parse(readFileSync(file, 'utf8')) as { revoked: { jti: string }[] };
    assert.deepEqual(onDisk.revoked.map((entry) => entry.jti).sort(), ['c-1', 'c-foreign-0', 'c-foreign-1', 'mine-after', 'mine-before']);
  } finally {
    store.close();
  }
});

test('16.4 htpasswd: two processes registering users at once lose no user', async () => {
  const file = join(freshDir(), 'htpasswd');
  const count = 12;
  await Promise.all([run('users', file, 'p', String(count)), run('users', file, 'q', String(count))]);
  const users = new UserStore({ file, maxUsers: 1_000, passwordMinLength: 8, bcryptRounds: 4 });
  const expected = ['p', 'q'].flatMap((prefix) => Array.from({ length: count }, (_, i) => `${prefix}-${i}`)).sort();
  assert.deepEqual(users.names().sort(), expected);
  assert.equal(await users.verify('q-3', 'password-q-3'), true);
});

test('16.4 rebuild-index: the storage folder is read after the lock is taken, so a change made by the lock holder is in the index', async () => {
  const dir = freshDir();
  const lockb = join(dir, 'registry.lockb');
  const storage = join(dir, 'storage');
  createConfigFile(lockb, defaultFields());
  const writePackage = (name: string) => {
    mkdirSync(join(storage, name), { recursive: true });
    const packument = { name, versions: { '1.0.0': { dist: {} } }, time: { '1.0.0': '2026-01-01T00:00:00.000Z' }, 'dist-tags': { latest: '1.0.0' } };
    writeFileSync(join(storage, name, 'package.json'), JSON.stringify(packument));
  };
  writePackage('before-lock');

  const readyFile = join(dir, 'child-ready');
  const outputFile = join(dir, 'child-output');
  let exited!: Promise<number | null>;
  // the test process holds the core lock from before the child starts until the folder changed
  withFileLockSync(lockb, () => {
    const child = spawn(process.execPath, [WORKER, 'rebuild', lockb, storage, readyFile, outputFile], { stdio: 'inherit' });
    exited = new Promise((resolve) => child.once('exit', resolve));
    const deadline = Date.now() + 30_000;
    while (!existsSync(readyFile) && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    assert.ok(existsSync(readyFile), 'the child started its rebuild');
    writePackage('while-locked');
  });
  assert.equal(await exited, 0);
  const result = JSON.parse(readFileSync(outputFile, 'utf8')) as { packages: number };
  assert.equal(result.packages, 2, 'both packages counted');
  const index = PackageIndex.open(lockb);
  try {
    assert.deepEqual([...new Set(index.readAll().map((record) => record.name))].sort(), ['before-lock', 'while-locked']);
  } finally {
    index.close();
  }
});

for (const mode of ['append', 'reserve'] as const) test(`rebuild-index racing a running server: an index append made while the rebuild holds the lock lands after it, never truncated away (sink.${mode}: ${mode === 'append' ? 'cache records' : 'a publish, lock taken before its packument write'})`, { skip: process.platform === 'win32' ? 'needs a named pipe (mkfifo)' : false }, async () => {
  const dir = freshDir();
  const lockb = join(dir, 'registry.lockb');
  const storage = join(dir, 'storage');
  createConfigFile(lockb, defaultFields());
  const packumentOf = (name: string) => JSON.stringify({ name, versions: { '1.0.0': { dist: {} } }, time: { '1.0.0': '2026-01-01T00:00:00.000Z' }, 'dist-tags': { latest: '1.0.0' } });
  mkdirSync(join(storage, 'early'), { recursive: true });
  writeFileSync(join(storage, 'early', 'package.json'), packumentOf('early'));
  // the rebuild blocks reading this package.json (a named pipe) until the test writes it: a
  // deterministic moment after the rebuild took the lock and listed the folder, before it truncates
  mkdirSync(join(storage, 'slow'));
  const pipe = join(storage, 'slow', 'package.json');
  execFileSync('mkfifo', [pipe]);
  // the server's own sink (the storage plugin's LockbIndexSink), opened before the rebuild starts
  const sink = new LockbIndexSink(lockb);
  const child = spawn(process.execPath, [WORKER, 'rebuild', lockb, storage, join(dir, 'ready'), join(dir, 'output')], { stdio: 'inherit' });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    let timer: NodeJS.Timeout | undefined;
    const writer = await Promise.race([
      open(pipe, 'w'), // returns once the rebuild opened the pipe to read it: it holds the lock now
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('the rebuild never read the storage folder')), 30_000))),
    ]).finally(() => clearTimeout(timer));
    // a publish of the running server: packument durable (after the rebuild listed the folder), then its index record
    const record = { kind: 'publish' as const, name: 'late', version: '1.0.0', sha512: '', time: Date.now(), detail: '' };
    // the publish path (PackageService) starts taking the lock before its packument write
    const slot = mode === 'reserve' ? sink.reserve() : null;
    mkdirSync(join(storage, 'late'));
    writeFileSync(join(storage, 'late', 'package.json'), packumentOf('late'));
    const appended =
      slot === null
        ? sink.append([record], { user: 'alice' })
        : slot.then(async (held) => {
            held.append([record], { user: 'alice' });
            await held.release();
          });
    await new Promise((resolve) => setTimeout(resolve, 100)); // the append has every chance to land before the truncate
    await writer.writeFile(packumentOf('slow'));
    await writer.close();
    assert.equal(await exited, 0);
    await appended;
  } finally {
    child.kill();
    sink.close();
  }
  const index = PackageIndex.open(lockb);
  try {
    assert.deepEqual([...new Set(index.readAll().map((record) => record.name))].sort(), ['early', 'late', 'slow']);
  } finally {
    index.close();
  }
});
