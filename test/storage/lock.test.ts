import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyedLock } from '../../plugins/verdaccio-registry-storage/lock';
import { StorageError } from '../../plugins/verdaccio-registry-storage/errors';
import { NODE_BIN } from '../harness/registry';

const root = mkdtempSync(join(tmpdir(), 'storage-lock-'));
after(() => rmSync(root, { recursive: true, force: true }));
const WORKER = join(__dirname, 'fixtures', 'lock-worker.js');

function runWorker(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(NODE_BIN, [WORKER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

test('in-process: holders of one key never overlap, other keys are not blocked', async () => {
  const lock = new KeyedLock(join(root, 'locks-a'));
  let inside = 0;
  let maxInside = 0;
  let otherKeyRan = false;
  const slow = Array.from({ length: 20 }, () =>
    lock.withLock('@scope/pkg', async () => {
      inside += 1;
      maxInside = Math.max(maxInside, inside);
      await new Promise((resolve) => setImmediate(resolve));
      inside -= 1;
    }),
  );
  const other = lock.withLock('other', async () => {
    otherKeyRan = true;
  });
  await Promise.all([...slow, other]);
  assert.equal(maxInside, 1);
  assert.ok(otherKeyRan);
});

test('in-process: a failing holder releases the lock; the error reaches its caller only', async () => {
  const lock = new KeyedLock(join(root, 'locks-b'));
  await assert.rejects(lock.withLock('k', async () => Promise.reject(new Error('boom'))), /boom/);
  assert.equal(await lock.withLock('k', async () => 42), 42);
});

test('in-process: waiting longer than timeoutMs fails with ERR_LOCK_TIMEOUT and keeps order', async () => {
  const lock = new KeyedLock(join(root, 'locks-c'), { timeoutMs: 200 });
  let release!: () => void;
  const holder = lock.withLock('k', () => new Promise<void>((resolve) => (release = resolve)));
  await new Promise((resolve) => setTimeout(resolve, 20));
  await assert.rejects(lock.withLock('k', async () => 'never'), (error: unknown) => error instanceof StorageError && error.code === 'ERR_LOCK_TIMEOUT');
  let ranAfter = false;
  const next = lock.withLock('k', async () => {
    ranAfter = true;
  });
  release();
  await holder;
  await next;
  assert.ok(ranAfter);
});

test('cross-process: 4 processes × 25 read-modify-writes of one counter lose no update', async () => {
  const lockDir = join(root, 'locks-x');
  const counter = join(root, 'counter.txt');
  writeFileSync(counter, '0');
  const results = await Promise.all(Array.from({ length: 4 }, () => runWorker(['count', lockDir, '@scope/pkg', counter, '25'])));
  for (const result of results) assert.equal(result.code, 0, result.stderr);
  assert.equal(Number(readFileSync(counter, 'utf8')), 100);
});

test('cross-process: a holder killed with SIGKILL does not block the next one until the stale timeout', async () => {
  const lockDir = join(root, 'locks-k');
  const child = spawn(NODE_BIN, [WORKER, 'hold', lockDir, 'pkg'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (out.includes('locked')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`holder exited early (${code})`)));
  });
  assert.ok(existsSync(join(lockDir, 'pkg.lock')), 'the holder left its lock directory');
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  // staleMs is 60 s and the timeout 20 s: only the dead-owner check can let us in
  const lock = new KeyedLock(lockDir, { timeoutMs: 20_000, staleMs: 60_000 });
  assert.equal(await lock.withLock('pkg', async () => 'acquired'), 'acquired');
});

test('11.7 locks: when the owner file cannot be written (ENOSPC/EROFS in production; here a folder in its place) the lock is given back', async () => {
  const dir = join(root, 'locks-owner');
  // a short timeout: a lock left behind shows as ERR_LOCK_TIMEOUT instead of a 30 s wait
  const lock = new KeyedLock(dir, { timeoutMs: 1000 });
  const owner = join(dir, `${encodeURIComponent('@s/pkg')}.owner`);
  mkdirSync(owner); // writeFile(owner) → EISDIR, after the lock directory was taken
  let ran = false;
  await assert.rejects(
    lock.withLock('@s/pkg', async () => {
      ran = true;
    }),
    (error: NodeJS.ErrnoException) => error.code === 'EISDIR',
  );
  assert.equal(ran, false, 'nothing runs without the full lock');
  assert.ok(!existsSync(join(dir, `${encodeURIComponent('@s/pkg')}.lock`)), 'the lock directory is gone');
  rmSync(owner, { recursive: true });
  assert.equal(await lock.withLock('@s/pkg', async () => 'next'), 'next', 'the next holder gets it at once');
});

test('11.7 locks: the locks folder removed while running is made again (writes do not fail until a restart)', async () => {
  const dir = join(root, 'locks-removed');
  const lock = new KeyedLock(dir, { timeoutMs: 1000 });
  assert.equal(await lock.withLock('k', async () => 1), 1);
  rmSync(dir, { recursive: true, force: true });
  assert.equal(await lock.withLock('k', async () => 2), 2);
  assert.ok(existsSync(dir));
});

test('15.2 lock waits: onWait reports a contended acquisition with the wait, an uncontended one not at all', async () => {
  const waits: { key: string; ms: number }[] = [];
  const lock = new KeyedLock(join(root, 'locks-wait'), { onWait: (key, ms) => waits.push({ key, ms }) });
  await lock.withLock('free', async () => undefined);
  assert.equal(waits.length, 0);
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let entered!: () => void;
  const inside = new Promise<void>((resolve) => (entered = resolve));
  const first = lock.withLock('@scope/pkg', async () => {
    entered();
    await held;
  });
  await inside;
  const second = lock.withLock('@scope/pkg', async () => 'second');
  release();
  assert.equal(await second, 'second');
  await first;
  assert.equal(waits.length, 1);
  assert.equal(waits[0].key, '@scope/pkg');
  assert.ok(waits[0].ms >= 0);
  // a throwing observer never fails the write it observes
  const strict = new KeyedLock(join(root, 'locks-wait-2'), {
    onWait: () => {
      throw new Error('observer bug');
    },
  });
  const a = strict.withLock('k', async () => new Promise<void>((resolve) => setImmediate(resolve)));
  assert.equal(await strict.withLock('k', async () => 'ok'), 'ok');
  await a;
});

test('15.2 lock waits: a lock directory left by a dead process counts as a wait (the cross-process path)', async () => {
  const lockDir = join(root, 'locks-dead-wait');
  mkdirSync(lockDir, { recursive: true });
  const target = join(lockDir, encodeURIComponent('@scope/dead'));
  const dead = spawnSync(NODE_BIN, ['-e', '0']).pid;
  mkdirSync(`${target}.lock`);
  writeFileSync(`${target}.owner`, `${hostname()}\n${dead}\n`);
  const waits: string[] = [];
  const lock = new KeyedLock(lockDir, { timeoutMs: 20_000, staleMs: 60_000, onWait: (key) => waits.push(key) });
  assert.equal(await lock.withLock('@scope/dead', async () => 'acquired'), 'acquired');
  assert.deepEqual(waits, ['@scope/dead']);
});
